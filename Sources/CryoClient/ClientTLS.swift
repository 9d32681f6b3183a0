import CryoTLS

/// The CLI's TLS settings for a tcp:// daemon, the docker CLI's way: `--tlsverify` (or
/// `--tls`, which cryo takes as verify: there is no unverified TLS) or DOCKER_TLS_VERIFY
/// non-empty; the files from `--tlscacert/--tlscert/--tlskey`, else ca.pem, cert.pem and
/// key.pem in DOCKER_CERT_PATH, else in DOCKER_CONFIG, else in ~/.docker. main.swift hands
/// the flags on as CRYO_TLSVERIFY, CRYO_TLSCACERT, CRYO_TLSCERT and CRYO_TLSKEY.
public enum ClientTLS {
    /// nil for a unix host, or when nothing asks for TLS (then `DaemonClient` refuses tcp://).
    public static func identity(host: String, environment env: [String: String]) throws -> TLSIdentity? {
        guard host.hasPrefix("tcp://") else { return nil }
        func value(_ k: String) -> String? { env[k].flatMap { $0.isEmpty ? nil : $0 } }
        let flagFiles = [value("CRYO_TLSCACERT"), value("CRYO_TLSCERT"), value("CRYO_TLSKEY")]
        let wanted = value("CRYO_TLSVERIFY") != nil || value("DOCKER_TLS_VERIFY") != nil
            || value("DOCKER_CERT_PATH") != nil || flagFiles.contains { $0 != nil }
        guard wanted else { return nil }
        let dir = value("DOCKER_CERT_PATH") ?? value("DOCKER_CONFIG") ?? ((value("HOME") ?? "/root") + "/.docker")
        do {
            return try TLSIdentity(caPath: flagFiles[0] ?? dir + "/ca.pem",
                                   certPath: flagFiles[1] ?? dir + "/cert.pem",
                                   keyPath: flagFiles[2] ?? dir + "/key.pem")
        } catch {
            throw ClientError.usage("could not read the TLS material for \(host): \(error)")
        }
    }
}
