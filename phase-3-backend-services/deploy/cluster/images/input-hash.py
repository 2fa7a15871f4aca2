#!/usr/bin/env python3
"""Content hashes that key the cached images of build-images.sh (sha256, hex, on stdout).

  input-hash.py paths PATH...            every file under each PATH (path relative to it,
                                         executable bit, content); strings given as
                                         `text:VALUE` are hashed as they are

Working-tree files are hashed, not a commit: uncommitted changes count.
"""

import hashlib
import os
import stat
import sys


def _file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _walk(root):
    """(relative path, executable, sha256) of every file under root, sorted."""
    if os.path.isfile(root):
        mode = os.stat(root).st_mode
        return [(os.path.basename(root), bool(mode & stat.S_IXUSR), _file_digest(root))]
    entries = []
    for directory, dirs, files in os.walk(root, followlinks=True):
        rel_dir = os.path.relpath(directory, root)
        dirs.sort()
        for name in sorted(files):
            rel = os.path.normpath(os.path.join(rel_dir, name))
            full = os.path.join(directory, name)
            mode = os.stat(full).st_mode
            entries.append((rel, bool(mode & stat.S_IXUSR), _file_digest(full)))
    if not entries and not os.path.isdir(root):
        sys.exit(f"input-hash: {root} does not exist")
    return entries


def _update(digest, label, entries):
    digest.update(f"{label}\0".encode())
    for rel, executable, content in entries:
        digest.update(f"{rel}\0{int(executable)}\0{content}\n".encode())


def hash_paths(items):
    digest = hashlib.sha256()
    for item in items:
        if item.startswith("text:"):
            digest.update(f"text\0{item[5:]}\n".encode())
        else:
            _update(digest, os.path.basename(os.path.normpath(item)), _walk(item))
    return digest.hexdigest()


def main(argv):
    if len(argv) >= 2 and argv[0] == "paths":
        print(hash_paths(argv[1:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
