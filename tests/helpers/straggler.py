"""A child that exits while its own child keeps running, for pidone's clean-up tests.

usage: straggler.py DIR child BEHAVIOUR [--setsid]
       straggler.py DIR grandchild BEHAVIOUR

The child starts the grandchild (in its own process group too, but a new session with
--setsid), waits until the grandchild is ready and the test creates DIR/exit-now, then exits
with status 5, leaving the grandchild behind.

The grandchild writes its pid to DIR/grandchild.pid and creates DIR/grandchild.ready once its
SIGTERM handler is installed. On SIGTERM it creates DIR/term, then:
  trap      waits until the test creates DIR/go, writes its parent's pid (the process that
            adopted it, as long as that one is still alive) to DIR/done and exits 0;
  stubborn  keeps running (so only SIGKILL ends it).
"""
import os
import signal
import subprocess
import sys
import time


def wait_for(path, deadline_s):
    deadline = time.monotonic() + deadline_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"straggler.py: {path} never appeared")
        time.sleep(0.005)


def touch(path):
    open(path, "w").close()


def main():
    directory, role, behaviour = sys.argv[1], sys.argv[2], sys.argv[3]
    path = lambda name: os.path.join(directory, name)
    if role == "child":
        subprocess.Popen(
            [sys.executable, __file__, directory, "grandchild", behaviour],
            start_new_session="--setsid" in sys.argv[4:],
        )
        wait_for(path("grandchild.ready"), 60)
        wait_for(path("exit-now"), 60)
        os._exit(5)

    def on_term(_signum, _frame):
        touch(path("term"))
        if behaviour == "trap":
            wait_for(path("go"), 60)
            with open(path("done"), "w") as f:
                f.write(f"{os.getppid()}\n")
            os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    with open(path("grandchild.pid"), "w") as f:
        f.write(f"{os.getpid()}\n")
    touch(path("grandchild.ready"))
    # The handler runs during the sleep, which then goes on: a bounded life if nobody kills it.
    time.sleep(300)


main()
