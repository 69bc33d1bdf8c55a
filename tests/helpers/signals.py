"""Reports the signals it receives, for pidone's signal-forwarding tests.

usage: signals.py DIR ROLE [--grandchild] [--relay]

ROLE names the files this process writes: it appends the number of every signal it receives to
DIR/ROLE.log, and creates DIR/ROLE.ready once its handlers are installed (so the test knows a
signal sent from then on is handled, not fatal). SIGTERM is recorded, then ends the process with
status 0.

--grandchild  first start `signals.py DIR grandchild` in the same process group, and wait for it
              to be ready before becoming ready itself.
--relay       on SIGUSR1, send SIGUSR2 to the grandchild.
"""
import os
import signal
import subprocess
import sys
import time

HANDLED = [
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
    signal.SIGTERM, signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM, signal.SIGRTMIN + 2,
    signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU,
]


def main():
    directory, role = sys.argv[1], sys.argv[2]
    flags = sys.argv[3:]
    log = os.path.join(directory, role + ".log")
    grandchild = None

    def handle(signum, _frame):
        with open(log, "a") as f:
            f.write(f"{signum}\n")
        if signum == signal.SIGUSR1 and "--relay" in flags:
            os.kill(grandchild.pid, signal.SIGUSR2)
        if signum == signal.SIGTERM:
            os._exit(0)

    for s in HANDLED:
        signal.signal(s, handle)
    if "--grandchild" in flags:
        grandchild = subprocess.Popen([sys.executable, __file__, directory, "grandchild"])
        ready = os.path.join(directory, "grandchild.ready")
        deadline = time.monotonic() + 60
        while not os.path.exists(ready):
            if time.monotonic() > deadline:
                sys.exit("signals.py: grandchild never became ready")
            time.sleep(0.005)
    open(os.path.join(directory, role + ".ready"), "w").close()
    # Signal handlers run during the sleep, which then goes on: a bounded life if nobody ends it.
    time.sleep(300)
    sys.exit("signals.py: nobody ended me")


main()
