import CryoEngine
import CryoImages
import FoundationEssentials

/// Fuzz target: arbitrary bytes as the body of `POST /containers/create`, through everything
/// cryod does with it before touching the disk: JSON decoding into the Docker models, the
/// label and create checks (CreateValidation), the confinement options (seccomp profiles in
/// Docker's format, capabilities, devices, namespaces), published ports, and the OCI spec
/// (SpecBuilder) and its encoding. Every outcome is a spec or an error; a trap is a crash.
public enum CreateRequestTarget {
    static let image = ImageConfiguration.Config(
        ExposedPorts: ["80/tcp": EmptyObject()], Env: ["PATH=/usr/bin:/bin", "HOME=/root"], Cmd: ["sh"], WorkingDir: "/")
    static let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\nweb:x:1000:1000::/home/web:/bin/sh\n"
    static let group = "root:x:0:\nnogroup:x:65534:\nweb:x:1000:\nwheel:x:10:web\n"

    public static func run(_ data: [UInt8]) {
        guard let req = try? JSONDecoder().decode(CreateContainerRequest.self, from: Data(data)) else { return }
        // What Engine.create does before it builds the spec.
        guard (try? CreateValidation.validate(config: req.config, hostConfig: req.hostConfig)) != nil else { return }
        _ = try? CheckpointLabels.validate(req.config.Labels)
        let exposed = Array((req.config.ExposedPorts ?? [:]).keys) + ["80/tcp"]
        _ = try? Engine.portMappings(req.hostConfig.PortBindings, publishAll: req.hostConfig.PublishAllPorts ?? false, exposed: exposed)
        var input = SpecBuilder.Input(id: String(repeating: "f", count: 64), config: req.config, hostConfig: req.hostConfig, image: image)
        input.passwd = passwd
        input.group = group
        input.networkNamespacePath = "/run/cryo/netns/fuzz"
        input.shmDir = "/var/lib/cryo/containers/fuzz/shm"
        input.tmpfsDir = "/var/lib/cryo/containers/fuzz/tmpfs"
        input.etcFilesDir = "/var/lib/cryo/containers/fuzz"
        input.maskedDirectories = ["/proc/acpi", "/sys/firmware"]
        guard let spec = try? SpecBuilder.build(input) else { return }
        _ = try? JSONEncoder().encode(spec)
    }
}
