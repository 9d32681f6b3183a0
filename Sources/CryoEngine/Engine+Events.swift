import FoundationEssentials

/// Container events for `docker events`: attributes as dockerd gives them (name, image and the
/// container's labels, plus the action's own such as exitCode).
extension Engine {
    func emitContainer(_ action: String, _ c: StoredContainer, _ extra: [String: String] = [:]) {
        var attrs = c.config.Labels ?? [:]
        attrs["name"] = c.name
        attrs["image"] = c.imageRef
        attrs.merge(extra) { _, new in new }
        events.emit("container", action, id: c.id, attributes: attrs)
    }
}
