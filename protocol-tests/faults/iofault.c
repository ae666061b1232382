/*
 * An LD_PRELOAD shim that makes file I/O fail on command, for fault tests against the
 * real broker binary. Nothing of it is linked into the broker.
 *
 * WEIR_IOFAULT_FILE names an arm file. While it does not exist every call goes straight
 * to libc. While it holds "<op> <path-part>", calls of that op on a file whose path
 * contains <path-part> fail with EIO:
 *   write   write, pwrite, pwrite64, writev, pwritev
 *   fsync   fsync, fdatasync
 * The test writes and removes the arm file to choose the moment of the fault.
 *
 * WEIR_IOFAULT_LEDGER names a ledger file: after every successful fsync or fdatasync a
 * line "<size> <path>" is appended to it, so that a test can cut each file back to what
 * was last made durable, as a power loss would.
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

/* Appends "<size> <path>" of a just-synced file to the ledger, if one is named. */
static void ledger_note(int fd) {
    const char *ledger = getenv("WEIR_IOFAULT_LEDGER");
    if (ledger == NULL) return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
    char link[64], path[1024], line[1200];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0) return;
    path[n] = 0;
    int len = snprintf(line, sizeof line, "%lld %s\n", (long long)st.st_size, path);
    int out = open(ledger, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (out < 0) return;
    static ssize_t (*raw_write)(int, const void *, size_t);
    if (raw_write == NULL) raw_write = dlsym(RTLD_NEXT, "write");
    raw_write(out, line, (size_t)len);
    close(out);
}

int fsync(int fd) {
    REAL(fsync, int, int);
    if (fault_armed(fd, "fsync")) { errno = EIO; return -1; }
    int result = real_fsync(fd);
    if (result == 0) ledger_note(fd);
    return result;
}

int fdatasync(int fd) {
    REAL(fdatasync, int, int);
    if (fault_armed(fd, "fsync")) { errno = EIO; return -1; }
    int result = real_fdatasync(fd);
    if (result == 0) ledger_note(fd);
    return result;
}
