/// The magic numbers at the head of CRIU's image files (CRIU's criu/include/magic.h).
public enum ImageMagic {
    /// First word of every normal image since image version 2 ("v1.1").
    public static let common: UInt32 = 0x5456_4319
    /// First word of service files: stats-dump, stats-restore, irmap-cache.
    public static let service: UInt32 = 0x5510_5940
    /// inventory.img carries only its own magic, no common one.
    public static let inventory: UInt32 = 0x5831_3116

    public static let pstree: UInt32 = 0x5027_3030
    public static let core: UInt32 = 0x5505_3847
    /// ids-<pid>.img: the task's kernel object and namespace ids (CRIU writes them here, not in core).
    public static let ids: UInt32 = 0x5443_2030
    public static let mm: UInt32 = 0x5749_2820
    public static let pagemap: UInt32 = 0x5608_4025
    public static let fdinfo: UInt32 = 0x5621_3732
    public static let files: UInt32 = 0x5630_3138
    public static let fs: UInt32 = 0x5140_3912
    public static let mountpoints: UInt32 = 0x5556_3928
    public static let utsns: UInt32 = 0x5447_3203
    public static let stats: UInt32 = 0x5709_3306
}
