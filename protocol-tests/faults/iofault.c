/*
 * An LD_PRELOAD shim that makes file I/O fail on command, for fault tests against the
 * real broker binary. Nothing of it is linked into the broker.
 *
 * WEIR_IOFAULT_FILE names an arm file. While it does not exist every call goes straight
 * to libc. While it holds "<op> <path-part>", calls of that op on a file whose path
 * contains <path-part> fail with EIO:
 *   write   write, pwrite, pwrite64, writev, pwritev
 *   fsync   fsync, fdatasync, sync_file_range
 * The test writes and removes the arm file to choose the moment of the fault.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int fault_read_arm(char *op, size_t op_len, char *part, size_t part_len) {
    const char *arm = getenv("WEIR_IOFAULT_FILE");
    if (arm == NULL) return 0;
    struct stat st;
    if (stat(arm, &st) != 0) return 0;
    /* Read with the raw syscall path of open/read: neither is intercepted here. */
    int fd = open(arm, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[512];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *space = strchr(buf, ' ');
    if (space == NULL) return 0;
    *space = 0;
    char *rest = space + 1;
    rest[strcspn(rest, "\r\n")] = 0;
    snprintf(op, op_len, "%s", buf);
    snprintf(part, part_len, "%s", rest);
    return 1;
}

/* Whether `op` on `fd` must fail now. */
static int fault_armed(int fd, const char *op) {
    char armed_op[32], part[400];
    if (!fault_read_arm(armed_op, sizeof armed_op, part, sizeof part)) return 0;
    if (strcmp(armed_op, op) != 0) return 0;
    char link[64], path[1024];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strstr(path, part) != NULL;
}

#define REAL(name, ret, ...)                                              \
    static ret (*real_##name)(__VA_ARGS__);                               \
    if (real_##name == NULL) real_##name = dlsym(RTLD_NEXT, #name);

ssize_t write(int fd, const void *buf, size_t count) {
    REAL(write, ssize_t, int, const void *, size_t);
    if (fault_armed(fd, "write")) { errno = EIO; return -1; }
    return real_write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    REAL(pwrite, ssize_t, int, const void *, size_t, off_t);
    if (fault_armed(fd, "write")) { errno = EIO; return -1; }
    return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
    REAL(pwrite64, ssize_t, int, const void *, size_t, off64_t);
    if (fault_armed(fd, "write")) { errno = EIO; return -1; }
    return real_pwrite64(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    REAL(writev, ssize_t, int, const struct iovec *, int);
    if (fault_armed(fd, "write")) { errno = EIO; return -1; }
    return real_writev(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
    REAL(pwritev, ssize_t, int, const struct iovec *, int, off_t);
    if (fault_armed(fd, "write")) { errno = EIO; return -1; }
    return real_pwritev(fd, iov, iovcnt, offset);
}

int fsync(int fd) {
    REAL(fsync, int, int);
    if (fault_armed(fd, "fsync")) { errno = EIO; return -1; }
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync, int, int);
    if (fault_armed(fd, "fsync")) { errno = EIO; return -1; }
    return real_fdatasync(fd);
}
