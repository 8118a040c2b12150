#!/usr/bin/env python3
"""Counts the public declarations of each module under Sources/: one per line that declares a
public or open symbol (func, var, let, init, subscript, type, protocol, typealias). Run from the
package root: tools/public_api.py [ROOT]. docs/ARCHITECTURE.md lists the counts."""
import os, re, sys, collections
root = sys.argv[1] if len(sys.argv) > 1 else "."
decl = re.compile(r'^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:nonisolated(?:\(unsafe\))?|final|static|class|override|mutating|required|convenience|indirect|lazy|@inlinable|@usableFromInline|@discardableResult)\s+)*(public|open)\s+(?:(?:static|class|final|override|mutating|nonisolated(?:\(unsafe\))?|required|convenience|indirect|lazy|private\(set\)|internal\(set\)|fileprivate\(set\))\s+)*(func|var|let|init|subscript|struct|class|enum|protocol|typealias|extension|actor|case)\b')
for module in sorted(os.listdir(os.path.join(root, "Sources"))):
    kinds = collections.Counter()
    for dirpath, _, files in os.walk(os.path.join(root, "Sources", module)):
        for f in files:
            if not f.endswith(".swift"): continue
            text = open(os.path.join(dirpath, f)).read()
            for line in text.split("\n"):
                m = decl.match(line)
                if m and m.group(2) != "extension": kinds[m.group(2)] += 1
    if kinds:
        total = sum(kinds.values())
        print(f"{module:14s} {total:4d}  " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
