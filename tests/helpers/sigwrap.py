"""Starts a program with a known, unusual signal state, as a container runtime might.

usage: sigwrap.py PROGRAM [ARGS...]

Ignores SIGHUP, SIGUSR2, SIGPIPE and SIGTTIN, blocks SIGUSR1, SIGALRM, SIGWINCH and SIGRTMIN+6,
then execs PROGRAM (so the signal state is inherited as is).
"""
import os
import signal
import sys

for s in (signal.SIGHUP, signal.SIGUSR2, signal.SIGPIPE, signal.SIGTTIN):
    signal.signal(s, signal.SIG_IGN)
signal.pthread_sigmask(
    signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGALRM, signal.SIGWINCH, signal.SIGRTMIN + 6}
)
os.execvp(sys.argv[1], sys.argv[1:])
