#include <archive.h>
#include <archive_entry.h>
/* setxattr/getxattr for overlay opaque markers (not exported by Swift's Glibc module). */
#include <sys/xattr.h>
