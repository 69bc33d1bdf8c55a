/* The floor of the bench: an init with no supervision logic at all, so that every figure can be
   read as a ratio to what no init can beat. It forks and execs every service given at once,
   without waiting for any exec; reaps whatever exits (orphans included, as PID 1); on TERM or
   INT sends TERM to every process (kill(-1)), and SIGKILL once STOP_MS have passed, and exits 0
   when no child is left. Usage: floor STOP_MS PROGRAM... (each program run without arguments).
   Compiled by the bench harness with the system's C compiler. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long ms_since(const struct timespec *t0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    long stop_ms = atol(argv[1]);
    sigset_t all, want;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, NULL);
    for (int i = 2; i < argc; i++) {
        if (fork() == 0) {
            sigprocmask(SIG_UNBLOCK, &all, NULL);
            execl(argv[i], argv[i], (char *)NULL);
            _exit(127);
        }
    }
    sigemptyset(&want);
    sigaddset(&want, SIGCHLD);
    sigaddset(&want, SIGTERM);
    sigaddset(&want, SIGINT);
    int stopping = 0, killed = 0;
    struct timespec term_at;
    for (;;) {
        int sig;
        if (stopping && !killed) {
            long left = stop_ms - ms_since(&term_at);
            struct timespec wait = {left / 1000, (left % 1000) * 1000000};
            sig = left > 0 ? sigtimedwait(&want, NULL, &wait) : -1;
            if (sig < 0 && (left <= 0 || errno == EAGAIN)) {
                kill(-1, SIGKILL);
                killed = 1;
            }
        } else {
            sig = sigwaitinfo(&want, NULL);
        }
        if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
            stopping = 1;
            clock_gettime(CLOCK_MONOTONIC, &term_at);
            kill(-1, SIGTERM);
        }
        for (;;) {
            pid_t pid = waitpid(-1, NULL, WNOHANG);
            if (pid > 0)
                continue;
            if (pid < 0 && errno == ECHILD && stopping)
                return 0;
            break;
        }
    }
}
