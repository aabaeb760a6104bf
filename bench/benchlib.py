"""bench/benchlib.py - what the Python benchmarks share: their work
directory and the 1 GiB source image full of random data they copy."""
import os
import subprocess
import tempfile


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True)


def enter_workdir(prefix):
    """chdir into BENCH_DIR (kept, so the source images are reused between
    runs) or a fresh temporary directory; returns a function that removes
    the latter at the end."""
    work = os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix=prefix)
    os.makedirs(work, exist_ok=True)
    os.chdir(work)

    def cleanup():
        if not os.environ.get("BENCH_DIR"):
            subprocess.run(["rm", "-rf", work])
    return cleanup


def random_raw_image(path):
    """A 1 GiB raw image of random data (kept when it exists already)."""
    if not os.path.exists(path):
        sh("qemu-img create -q -f raw %s 1G" % path)
        sh("dd if=/dev/urandom of=%s bs=1M count=1024 conv=notrunc "
           "status=none" % path)
