/* Make a program on an AVX512 machine see a CPU with AVX2 only (benches/avx2_only.py runs it).
 *
 * Loaded with LD_PRELOAD. Linux can make the CPUID instruction fault (ARCH_SET_CPUID, on CPUs with
 * the cpuid_fault flag); the fault is caught here, CPUID runs for real and the AVX512, AMX and
 * AVX-VNNI bits are cleared from its answer. /proc/cpuinfo is filtered the same way. ONNX
 * Runtime's MLAS, oneDNN, PyTorch's and numpy's dispatch then choose their AVX2 kernels.
 *
 * What it does not change: glibc picks its string functions (memcpy...) before this runs, and the
 * CPU's clock and caches are this machine's. It measures the AVX2 code paths on this core, not a
 * laptop of another make.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static void set_cpuid_faulting(int on) { syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

static void mask(unsigned leaf, unsigned sub, unsigned *a, unsigned *b, unsigned *c, unsigned *d) {
    if (leaf == 7 && sub == 0) {
        /* AVX512 F, DQ, IFMA, PF, ER, CD, BW, VL */
        *b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
        /* AVX512 VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ */
        *c &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* AVX512 4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512-FP16, AMX-TILE, AMX-INT8 */
        *d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        *a &= ~((1u << 4) | (1u << 5)); /* AVX-VNNI, AVX512-BF16 */
    }
    (void)d;
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *r = uc->uc_mcontext.gregs;
    unsigned char *ip = (unsigned char *)r[REG_RIP];
    (void)info;
    if (ip[0] != 0x0f || ip[1] != 0xa2) { /* not CPUID: a real fault */
        signal(sig, SIG_DFL);
        return;
    }
    unsigned leaf = (unsigned)r[REG_RAX], sub = (unsigned)r[REG_RCX], a, b, c, d;
    set_cpuid_faulting(0);
    __cpuid_count(leaf, sub, a, b, c, d);
    set_cpuid_faulting(1);
    mask(leaf, sub, &a, &b, &c, &d);
    r[REG_RAX] = a;
    r[REG_RBX] = b;
    r[REG_RCX] = c;
    r[REG_RDX] = d;
    r[REG_RIP] += 2;
}

__attribute__((constructor)) static void start(void) {
    struct sigaction action = {0};
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &action, NULL);
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        fprintf(stderr, "avx2_only: this CPU or kernel cannot make CPUID fault (no cpuid_fault flag)\n");
        exit(3);
    }
}

static const char *HIDDEN[] = {"avx512", "amx", "avx_vnni", NULL};

static int hidden(const char *flag, size_t len) {
    for (int i = 0; HIDDEN[i]; i++)
        if (len >= strlen(HIDDEN[i]) && strncmp(flag, HIDDEN[i], strlen(HIDDEN[i])) == 0) return 1;
    return 0;
}

/* /proc/cpuinfo without the hidden flags, as an in-memory file. */
static int filtered_cpuinfo(int (*real_open)(const char *, int, ...)) {
    int in = real_open("/proc/cpuinfo", O_RDONLY);
    FILE *src = in < 0 ? NULL : fdopen(in, "r");
    int out = memfd_create("cpuinfo", 0);
    if (!src || out < 0) return -1;
    char line[65536];
    while (fgets(line, sizeof line, src)) {
        if (strncmp(line, "flags", 5) != 0) {
            write(out, line, strlen(line));
            continue;
        }
        char kept[65536];
        size_t n = 0;
        for (char *word = strtok(line, " \n"); word; word = strtok(NULL, " \n")) {
            if (hidden(word, strlen(word))) continue;
            n += snprintf(kept + n, sizeof kept - n, "%s%s", n ? " " : "", word);
        }
        n += snprintf(kept + n, sizeof kept - n, "\n");
        write(out, kept, n);
    }
    fclose(src);
    lseek(out, 0, SEEK_SET);
    return out;
}

#define OPEN_WRAPPER(name)                                                                         \
    int name(const char *path, int flags, ...) {                                                   \
        static int (*real)(const char *, int, ...);                                                \
        if (!real) real = dlsym(RTLD_NEXT, #name);                                                 \
        va_list args;                                                                              \
        va_start(args, flags);                                                                     \
        mode_t mode = va_arg(args, mode_t);                                                        \
        va_end(args);                                                                              \
        if (path && strcmp(path, "/proc/cpuinfo") == 0) return filtered_cpuinfo(real);             \
        return real(path, flags, mode);                                                            \
    }

OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

#define OPENAT_WRAPPER(name)                                                                       \
    int name(int dir, const char *path, int flags, ...) {                                          \
        static int (*real)(int, const char *, int, ...);                                           \
        static int (*real_open)(const char *, int, ...);                                           \
        if (!real) real = dlsym(RTLD_NEXT, #name);                                                 \
        if (!real_open) real_open = dlsym(RTLD_NEXT, "open");                                      \
        va_list args;                                                                              \
        va_start(args, flags);                                                                     \
        mode_t mode = va_arg(args, mode_t);                                                        \
        va_end(args);                                                                              \
        if (path && strcmp(path, "/proc/cpuinfo") == 0) return filtered_cpuinfo(real_open);        \
        return real(dir, path, flags, mode);                                                       \
    }

OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)
