import CryoLinux
import FoundationEssentials

extension CryoFailure.Code {
    /// The registry refused the credentials (or got none where it needs some). A pull answers
    /// 500 with it, as dockerd does: a 401 would make the docker CLI prompt for a login.
    public static let registryUnauthorized = CryoFailure.Code("registry-unauthorized")
    /// `POST /auth` with credentials the registry refused: 401.
    public static let loginFailed = CryoFailure.Code("login-failed")
    /// The registry could not be reached or broke off a transfer.
    public static let registryUnreachable = CryoFailure.Code("registry-unreachable")
}

/// A registry's error body: `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"…","detail":…}]}`.
struct RegistryErrorBody: Decodable {
    struct Entry: Decodable {
        var code: String?
        var message: String?
    }
    var errors: [Entry]?

    static func parse(_ bytes: [UInt8]) -> [Entry] {
        (try? JSONDecoder().decode(RegistryErrorBody.self, from: Data(bytes)))?.errors ?? []
    }
}
