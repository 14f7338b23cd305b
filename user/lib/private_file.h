/* Files that may hold a secret: written whole, mode 0600, in a directory only its owner
 * may enter, never through a symbolic link planted by someone else. */
#ifndef VNET_XDP_PRIVATE_FILE_H
#define VNET_XDP_PRIVATE_FILE_H

#include <stdio.h>

/* Creates DIR (mode 0700) or makes an existing one of ours 0700; refuses a symbolic link
 * or a directory of another user. Returns 0 or -errno. */
int private_dir_ensure(const char *dir);

/* Writes all of buf to fd, through short writes and EINTR. 0 or -errno. */
int fd_write_all(int fd, const void *buf, size_t len);

/* Writes PATH through a new temporary file beside it (O_CREAT | O_EXCL | O_NOFOLLOW,
 * mode 0600) that fill() writes and that is then renamed over PATH: PATH is never half
 * written, and a link at PATH is replaced, not followed. Returns 0, -errno, or fill's
 * negative result (nothing is left behind then). */
int private_file_write(const char *path, int (*fill)(FILE *out, void *arg), void *arg);

#endif
