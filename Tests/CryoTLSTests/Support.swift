import CryoTLS
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

func fileMode(_ path: String) -> mode_t {
    var st = stat()
    guard lstat(path, &st) == 0 else { return 0 }
    return st.st_mode & 0o7777
}

/// A CA and identities in `dir`: dir/ca (the CA), and one identity directory per `issue`.
struct TestPKI {
    let dir: String
    let ca: CertificateAuthority

    init(dir: String, name: String = "test CA") throws {
        self.dir = dir
        self.ca = try CertificateAuthority.create(commonName: name)
        _ = try ca.write(to: dir + "/ca", force: false)
    }

    func identity(_ sub: String, names: [String] = [], ips: [String] = ["127.0.0.1"], days: Int = 30, notBefore: Date? = nil) throws -> TLSIdentity {
        let issued = try ca.issue(names: names, ips: ips, days: days, notBefore: notBefore)
        let paths = try ca.write(issued, to: dir + "/" + sub, force: false)
        return try TLSIdentity(paths: paths)
    }
}
