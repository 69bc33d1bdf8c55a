"""Leaves N orphaned grandchildren that all exit at the same moment, then checks that whoever
adopted them reaped every one.

usage: burst.py DIR N

Each grandchild blocks reading a pipe; once all N are orphaned (adopted by the reaper, this
process's parent) it writes DIR/ready and waits for DIR/go, then closes the pipe: every
grandchild reads end of file and exits at once. It then waits (up to a deadline) until no
zombie whose parent is the reaper remains, and writes the pids of any that do to DIR/zombies
(empty when all were reaped).
"""
import os
import sys
import time

from orphans import zombies_of


def main():
    directory, n = sys.argv[1], int(sys.argv[2])
    reaper = os.getppid()
    read, write = os.pipe()
    for _ in range(n):
        middle = os.fork()
        if middle == 0:
            if os.fork() == 0:
                os.close(write)
                os.read(read, 1)
                os._exit(0)
            os._exit(0)
        os.waitpid(middle, 0)
    os.close(read)
    with open(os.path.join(directory, "ready"), "w") as f:
        f.write(f"{reaper}\n")
    go = os.path.join(directory, "go")
    deadline = time.monotonic() + 120
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.close(write)
    deadline = time.monotonic() + 30
    left = zombies_of(reaper)
    while left and time.monotonic() < deadline:
        time.sleep(0.01)
        left = zombies_of(reaper)
    with open(os.path.join(directory, "zombies"), "w") as f:
        f.write(" ".join(map(str, left)))


main()
