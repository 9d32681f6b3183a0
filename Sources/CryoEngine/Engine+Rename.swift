import CryoLinux
import FoundationEssentials

extension Engine {
    /// `docker rename`: the record carries the name (checkpoints and the spec name the
    /// container by id), so one record change under the container's lock is the rename; then
    /// the /etc/hosts of the container and its peers on a user network get the new name.
    /// A name in use is a 409, as with Docker.
    public func renameContainer(_ ref: String, to raw: String) async throws {
        let newName = raw.hasPrefix("/") ? String(raw.dropFirst()) : raw
        guard !newName.isEmpty else { throw EngineError.bad("Neither old nor new names may be empty") }
        _ = try Names.validate(newName)
        let id = try resolve(ref).id
        try await withLock(id) {
            let c = try resolve(id)
            if c.name == newName { throw EngineError.bad("Renaming a container with the same name as its current name") }
            if let other = allRecords.first(where: { $0.name == newName }) {
                throw EngineError.conflict("Conflict. The container name \"/\(newName)\" is already in use by container \"\(other.id)\". You have to remove (or rename) that container to be able to reuse that name.")
            }
            var changed = c
            changed.name = newName
            try await save(changed)
            emitContainer("rename", changed, ["oldName": "/" + c.name])
            if c.isRunning, let e = c.endpoint { await refreshPeers(networkID: e.networkID, except: nil) }
        }
    }
}
