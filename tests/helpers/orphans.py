"""Orphans N short-lived grandchildren, then checks that whoever adopted them reaped them.

usage: orphans.py DIR N

Writes DIR/reaper (this process's parent: pidone), then for each grandchild appends to
DIR/ppids the parent it saw once its own parent had died (it must be the reaper). Once all N
have reported, waits (up to a deadline) until no zombie whose parent is the reaper remains, and
writes the pids of any that do to DIR/zombies (empty when all were reaped).
"""
import os
import sys
import time


def zombies_of(reaper):
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 1:].split()
        if fields[0] == "Z" and int(fields[1]) == reaper:
            found.append(int(name))
    return found


def main():
    directory, n = sys.argv[1], int(sys.argv[2])
    reaper = os.getppid()
    with open(os.path.join(directory, "reaper"), "w") as f:
        f.write(f"{reaper}\n")
    ppids = os.path.join(directory, "ppids")
    log = os.open(ppids, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for _ in range(n):
        middle = os.fork()
        if middle == 0:
            me = os.getpid()
            if os.fork() == 0:
                # Wait to be orphaned, report the adoptive parent, and die at once.
                deadline = time.monotonic() + 60
                while os.getppid() == me and time.monotonic() < deadline:
                    time.sleep(0.001)
                os.write(log, f"{os.getppid()}\n".encode())
                os._exit(0)
            os._exit(0)
        os.waitpid(middle, 0)
    os.close(log)

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with open(ppids, "rb") as f:
            if f.read().count(b"\n") >= n:
                break
        time.sleep(0.01)
    deadline = time.monotonic() + 20
    left = zombies_of(reaper)
    while left and time.monotonic() < deadline:
        time.sleep(0.01)
        left = zombies_of(reaper)
    with open(os.path.join(directory, "zombies"), "w") as f:
        f.write(" ".join(map(str, left)))


if __name__ == "__main__":
    main()
