"""Build pyslide's Cython extensions, with OpenMP where the compiler has it.

Environment switches (all optional):

``PYSLIDE_NATIVE=1``
    add ``-march=native`` (faster on the build machine, "Illegal instruction"
    on older CPUs: never for wheels you ship elsewhere).
``PYSLIDE_NO_OPENMP=1``
    build serial code even where OpenMP works.
``PYSLIDE_BOUNDSCHECK=1``
    turn Cython bounds and wrap-around checks back on, for debugging.
``PYSLIDE_ONLY=_hash,_io``
    build only these extensions (developer convenience).

Every ``pyslide/_*.pyx`` is one extension module. The training kernels are
split by concern (``docs/architecture.md``): ``_kernels`` (the engine),
``_sample``, ``_shared``, ``_fused``, ``_optim``, ``_loss``, ``_topk``, and the
LSH families (``_hash``) and tables (``_tables``),
sharing C declarations through ``.pxd`` files (``_layer``, ``_vec``,
``_common``, ``_hash``, ``_tables``). A change to a ``.pxd`` needs every module that
cimports it rebuilt: build them all together (no ``PYSLIDE_ONLY``) and
cythonize follows the dependencies.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent.resolve()
PKG = HERE / "pyslide"

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d\\n", n);
        return n > 0 ? 0 : 1;
    }
    """
)


def _flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def openmp_works(compiler_cmd="cc"):
    """Compile and run a tiny ``#pragma omp parallel`` program."""
    if _flag("PYSLIDE_NO_OPENMP"):
        return False
    cc = os.environ.get("CC", compiler_cmd).split()[0]
    if shutil.which(cc) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        exe = Path(tmp) / "probe"
        src.write_text(OPENMP_PROBE)
        try:
            subprocess.run([cc, "-fopenmp", str(src), "-o", str(exe)],
                           check=True, capture_output=True, timeout=120)
            subprocess.run([str(exe)], check=True, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
    return True


USE_OPENMP = openmp_works()
if not USE_OPENMP:
    warnings.warn(
        "pyslide: OpenMP is not available to this compiler; building serial "
        "kernels (correct but single-threaded). Install a compiler with OpenMP "
        "support (gcc, or clang with libomp) and rebuild to use all cores.")

# -fno-math-errno lets gcc vectorise sqrtf (results are unchanged; only errno
# is not set), which the Adam update needs. -fno-trapping-math lets it turn a
# float comparison into a vector select (the softmax's exp clamps its input);
# no value changes, only floating-point exception flags are not promised.
compile_args = ["-O3", "-fno-strict-aliasing", "-fno-math-errno", "-fno-trapping-math"]
link_args = []
if _flag("PYSLIDE_NATIVE"):
    compile_args.append("-march=native")
if USE_OPENMP:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

directives = {
    "language_level": 3,
    "boundscheck": _flag("PYSLIDE_BOUNDSCHECK"),
    "wraparound": _flag("PYSLIDE_BOUNDSCHECK"),
    "initializedcheck": False,
    "nonecheck": False,
    "cdivision": True,
    "embedsignature": True,
}

only = {s.strip() for s in os.environ.get("PYSLIDE_ONLY", "").split(",") if s.strip()}
extensions = []
for pyx in sorted(PKG.glob("_*.pyx")):
    name = pyx.stem
    if only and name not in only:
        continue
    extensions.append(Extension(
        f"pyslide.{name}",
        [str(pyx.relative_to(HERE))],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    ))

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        compile_time_env={"PYSLIDE_OPENMP": USE_OPENMP},
        include_path=[str(PKG)],
        nthreads=int(os.environ.get("PYSLIDE_BUILD_JOBS", "0")) or None,
    ),
    cmdclass={"build_ext": build_ext},
)
