import Glibc
import NIOCore
import NIOPosix

/// Copies between a pipe or pty descriptor and async code on NIO's event loops: the
/// descriptor is made non-blocking and watched by epoll, so a quiet exec session costs no
/// thread (each used to park a pool thread in `read` for as long as its process lived).
/// Backpressure comes from NIOAsyncChannel: nothing is read faster than it is consumed.
public enum PipeRelay {
    /// Reads `fd` (taking ownership: it is closed at the end) until EOF or an error (a pty
    /// master reports EIO once the last slave is gone), handing each chunk to `sink`.
    public static func drain(fd: Int32, group: EventLoopGroup, _ sink: @Sendable ([UInt8]) async -> Void) async {
        guard let channel = await open(fd, reading: true, group: group) else { return }
        try? await channel.executeThenClose { inbound, _ in
            do {
                for try await buffer in inbound { await sink(Array(buffer.readableBytesView)) }
            } catch {
                // EOF by error (EIO from a pty, a reset): the stream is over either way.
            }
        }
    }

    /// Writes what `source` yields to `fd` (taking ownership) until `source` returns nil or
    /// a write fails (the reader is gone), then closes `fd`.
    public static func feed(fd: Int32, group: EventLoopGroup, _ source: @Sendable () async -> [UInt8]?) async {
        guard let channel = await open(fd, reading: false, group: group) else { return }
        try? await channel.executeThenClose { _, outbound in
            while let bytes = await source() {
                do { try await outbound.write(ByteBuffer(bytes: bytes)) } catch { break }
            }
            outbound.finish()
        }
    }

    /// `fd` as an async channel that owns it; nil (and `fd` closed) if NIO refuses it.
    private static func open(_ fd: Int32, reading: Bool, group: EventLoopGroup) async -> NIOAsyncChannel<ByteBuffer, ByteBuffer>? {
        let wrap: @Sendable (Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> = { ch in
            ch.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch) }
        }
        let bootstrap = NIOPipeBootstrap(group: group).channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        do {
            return reading ? try await bootstrap.takingOwnershipOfDescriptor(input: fd, channelInitializer: wrap)
                           : try await bootstrap.takingOwnershipOfDescriptor(output: fd, channelInitializer: wrap)
        } catch {
            close(fd)
            return nil
        }
    }
}
