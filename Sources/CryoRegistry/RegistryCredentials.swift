import CryoLinux
import FoundationEssentials

/// Credentials for one registry, as a Docker client sends them: the `X-Registry-Auth`
/// header of a pull or push (base64url JSON, padded or not) or the body of `POST /auth`.
/// Every field is optional and may be JSON null (docker-py sends `"email": null`).
public struct RegistryCredentials: Sendable, Equatable, Decodable {
    public var username: String?
    public var password: String?
    /// "user:password" in base64, as `~/.docker/config.json` stores it.
    public var auth: String?
    public var email: String?
    public var serveraddress: String?
    public var identitytoken: String?
    public var registrytoken: String?

    public init(username: String? = nil, password: String? = nil, serveraddress: String? = nil) {
        self.username = username
        self.password = password
        self.serveraddress = serveraddress
    }

    public static let anonymous = RegistryCredentials()

    /// The user name and password to present, from the fields or from `auth`.
    public var basic: (user: String, password: String)? {
        if let u = username, !u.isEmpty { return (u, password ?? "") }
        if let a = auth, !a.isEmpty, let raw = Base64.decode(a),
           let text = String(validating: raw, as: UTF8.self), let colon = text.firstIndex(of: ":") {
            return (String(text[..<colon]), String(text[text.index(after: colon)...]))
        }
        return nil
    }

    public var isAnonymous: Bool { basic == nil && (registrytoken ?? "").isEmpty && (identitytoken ?? "").isEmpty }

    /// The `X-Registry-Auth` header's credentials. dockerd ignores a header it cannot read
    /// (the pull then runs anonymously), and so does cryod; `e30=` (`{}`) is anonymous.
    public static func fromHeader(_ value: String?) -> RegistryCredentials {
        guard let value, !value.isEmpty, let bytes = Base64.decode(value) else { return .anonymous }
        return (try? JSONDecoder().decode(RegistryCredentials.self, from: Data(bytes))) ?? .anonymous
    }

    /// `POST /auth`'s body, which must be valid JSON.
    public static func fromBody(_ bytes: [UInt8]) throws -> RegistryCredentials {
        do {
            return try JSONDecoder().decode(RegistryCredentials.self, from: Data(bytes))
        } catch {
            throw CryoFailure(.invalidArgument, "the login request body is not a JSON AuthConfig ({\"username\",\"password\",\"serveraddress\"}): \(error)")
        }
    }
}

/// Base64 in both alphabets (standard and URL-safe), padding optional.
enum Base64 {
    static func decode(_ s: String) -> [UInt8]? {
        var text = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        while text.utf8.count % 4 != 0 { text += "=" }
        return Data(base64Encoded: text).map { Array($0) }
    }

    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
}
