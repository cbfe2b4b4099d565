#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test-man.py - every public function and program has a manual page, and
every page is clean.

usage: test-man.py SRCDIR [BUILDDIR]

Checks, failing with a list of every problem found:
 - every TQ_API function declared in include/tq/*.h is named in the NAME
   section (`.Nm`) of a section-3 page in man/: its own page NAME.3, or a
   group page that man/meson.build links NAME.3 to;
 - every name in a section-3 page's NAME section is such a function
   (no page for a function that is gone);
 - every page in man/ is listed in man/meson.build (so it is installed);
 - tq.7 and a section-1 or -8 page for every program exist; with BUILDDIR,
   every program the build installs has one, and every long option that
   the program's --help prints appears in its page (`Fl -option`);
 - every page passes `mandoc -T lint -W warning`, or `groff -mdoc -ww -z`
   when mandoc is not installed (neither: the lint is skipped, saying so).
Exit 0 pass, 1 fail.
"""
import json
import os
import re
import shutil
import subprocess
import sys

PROGRAMS = ['tq', 'tqd', 'tq-demo', 'tqtop', 'tq-bench']

problems = []


def problem(msg):
    problems.append(msg)
    print('FAIL: ' + msg)


def header_functions(path):
    """Names of the functions declared with TQ_API, in order."""
    text = open(path, encoding='utf-8').read()
    # Drop comments so that prose mentioning TQ_API cannot count.
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    text = re.sub(r'//[^\n]*', ' ', text)
    names = []
    for m in re.finditer(r'^[ \t]*TQ_API\b([^;{]*)', text, flags=re.M):
        f = re.search(r'([A-Za-z_][A-Za-z0-9_]*)\s*\(', m.group(1))
        if not f:
            problem('cannot parse the declaration "TQ_API%s"' % m.group(1).strip())
            continue
        names.append(f.group(1))
    return names


def name_section(path):
    """The names (.Nm) of a page's NAME section."""
    names, inside = [], False
    for line in open(path, encoding='utf-8'):
        line = line.rstrip('\n')
        if line == '.Sh NAME':
            inside = True
        elif line.startswith('.Nd ') or line.startswith('.Sh '):
            inside = False
        elif inside and line.startswith('.Nm '):
            names.append(line.split()[1])
    return names


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    src = sys.argv[1]
    build = sys.argv[2] if len(sys.argv) > 2 else None
    mandir = os.path.join(src, 'man')
    pages = sorted(f for f in os.listdir(mandir) if re.search(r'\.[1-8]$', f))
    build_file = open(os.path.join(mandir, 'meson.build'), encoding='utf-8').read()

    incdir = os.path.join(src, 'include', 'tq')
    headers = sorted(h for h in os.listdir(incdir) if h.endswith('.h'))
    funcs = []
    for h in headers:
        funcs += header_functions(os.path.join(incdir, h))
    print('%s declare %d TQ_API functions; man/ has %d pages'
          % (', '.join(headers), len(funcs), len(pages)))
    if 'tq.h' not in headers or len(funcs) < 10:
        problem('too few TQ_API functions found in include/tq: the parser is broken')

    # Which page documents which name (section 3).
    documented = {}
    for p in pages:
        if not p.endswith('.3'):
            continue
        names = name_section(os.path.join(mandir, p))
        if p[:-2] not in names:
            problem('%s: its NAME section does not name %s' % (p, p[:-2]))
        for n in names:
            if n in documented:
                problem('%s is named in both %s and %s' % (n, documented[n], p))
            documented[n] = p
            if n not in funcs:
                problem('%s names %s, which no header of include/tq declares' % (p, n))
    for f in funcs:
        if f not in documented:
            problem('%s has no man page: add it to the NAME section of a page in '
                    'man/ (and a new page to man/meson.build)' % f)
        elif not os.path.exists(os.path.join(mandir, f + '.3')):
            print('ok: %s -> %s (installed as a link)' % (f, documented[f]))
        else:
            print('ok: %s' % f)

    for p in pages:
        if "'%s'" % p not in build_file:
            problem('man/%s is not listed in man/meson.build, so it is not installed' % p)
    for p in ['tq.7'] + ['%s.%s' % (prog, '8' if prog == 'tqd' else '1') for prog in PROGRAMS]:
        if p not in pages:
            problem('man/%s is missing' % p)

    if build:
        check_programs(build, mandir, pages)

    lint(mandir, pages)
    if problems:
        print('%d problem(s)' % len(problems))
        return 1
    print('all man pages present and clean')
    return 0


def check_programs(build, mandir, pages):
    """Every installed program has a page that mentions each of its options."""
    try:
        out = subprocess.run(['meson', 'introspect', '--targets', build], check=True,
                             capture_output=True, text=True, timeout=60).stdout
        targets = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        problem('meson introspect --targets %s: %s' % (build, e))
        return
    for t in targets:
        if t['type'] != 'executable' or not t.get('installed'):
            continue
        prog = t['name']
        page = next((p for p in pages if re.fullmatch(re.escape(prog) + r'\.[18]', p)), None)
        if not page:
            problem('program %s is installed but has no man page (man/%s.1 or .8)' % (prog, prog))
            continue
        exe = t['filename'][0]
        if not os.access(exe, os.X_OK):
            print('note: %s is not built, its options are not checked' % prog)
            continue
        try:
            r = subprocess.run([exe, '--help'], capture_output=True, text=True, timeout=20,
                               stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as e:
            problem('%s --help: %s' % (prog, e))
            continue
        if r.returncode != 0:
            problem('%s --help exited %d: %s' % (prog, r.returncode, r.stderr.strip()[:300]))
            continue
        text = open(os.path.join(mandir, page), encoding='utf-8').read()
        opts = sorted(set(re.findall(r'(?<![\w-])--([a-z][a-z0-9-]*)', r.stdout + r.stderr)))
        if not opts:
            problem('%s --help prints no option' % prog)
        # `Fl -opt` where the page describes it, or `--opt` in a literal
        # example (a --help text may quote another program's options).
        missing = [o for o in opts
                   if not re.search(r'(Fl -|--)%s(?![a-z0-9-])' % re.escape(o), text)]
        for o in missing:
            problem('%s --help prints --%s, which man/%s does not describe' % (prog, o, page))
        if not missing:
            print('ok: %s: all %d options of --help are in %s' % (prog, len(opts), page))


def lint(mandir, pages):
    paths = [os.path.join(mandir, p) for p in pages]
    if shutil.which('mandoc'):
        cmd = ['mandoc', '-T', 'lint', '-W', 'warning']
    elif shutil.which('groff'):
        cmd = ['groff', '-mdoc', '-ww', '-z']
    else:
        print('SKIP lint: neither mandoc nor groff is installed (apt-get install mandoc)')
        return
    for p in paths:
        r = subprocess.run(cmd + [p], capture_output=True, text=True, timeout=60)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0 or out:
            problem('%s %s: exit %d\n%s' % (' '.join(cmd), os.path.basename(p),
                                            r.returncode, out))
    print('lint: %s on %d pages' % (cmd[0], len(paths)))


if __name__ == '__main__':
    sys.exit(main())
