"""What a kernel, copy or runtime call's name says: Tensor Core or matmul kernel, copy
direction, a readable short name. Shared by the analyzers."""

from __future__ import annotations

import re


class NoCase:
    """A case-insensitive search that stays fast on long names.

    Python's re runs 10-20x slower with IGNORECASE on alternations of literals (kernel
    names run to 2 kB: 0.1 s on a trace with 200 of them). ASCII text is lowercased once
    and searched case-sensitively, which finds the same matches for this lowercase,
    ASCII pattern; other text uses re.IGNORECASE. Only truth values are used.
    """

    __slots__ = ("folded", "nocase")

    def __init__(self, pattern: str) -> None:
        if pattern != pattern.lower() or not pattern.isascii():
            raise ValueError(f"NoCase patterns are lowercase ASCII: {pattern!r}")
        self.folded = re.compile(pattern)
        self.nocase = re.compile(pattern, re.IGNORECASE)

    def search(self, text: str) -> bool:
        if text.isascii():
            return self.folded.search(text.lower()) is not None
        return self.nocase.search(text) is not None


# Kernel name families that run on Tensor Cores (cuBLAS/cuDNN/CUTLASS naming): tensorop,
# xmma, hmma/imma, (w)gmma, and MMA instruction shapes such as s1688, h884, 16816.
_TENSOR_CORE = NoCase(r"tensorop|xmma|hmma|imma|wgmma|gmma_|[hsi]884|[hsi]1688|16816|8816")
# Reduced-precision GEMM/conv kernels that name only their data type (ampere_bf16_..).
_TENSOR_CORE_TYPES = NoCase(r"tf32|bf16|fp16|f16|int8")
# GEMM and convolution kernels: the work that Tensor Cores could run.
_MATMUL_CONV = NoCase(r"gemm|conv|winograd|fft2d|scudnn|dgrad|wgrad|fprop|implicit_gemm")
# Helper kernels around a convolution or GEMM that do no matrix math themselves.
_NOT_MATMUL = NoCase(
    r"fbgemm|offsets|nchwtonhwc|nhwctonchw|generatewinogradtiles|reducesplitk|"
    r"reduce_wgrad|scalepacked|splitkreduce"
)
_NAMESPACE = re.compile(r"\b\w+::")
_BRACKET = re.compile(r"[<>(]")
_MEMCPY_NAME = re.compile(r"Memcpy\s+(\w+)\s*\((\w+)\s*->\s*(\w+)\)")
# HTA's runtime calls that enqueue an op on a stream (TraceSymbolTable's launch query).
QUEUE_LAUNCHES = frozenset(
    {
        "cudaLaunchKernel",
        "cudaLaunchKernelExC",
        "cuLaunchKernel",
        "cudaMemcpyAsync",
        "cudaMemsetAsync",
        "hipLaunchKernel",
        "hipExtModuleLaunchKernel",
        "hipMemcpyAsync",
        "hipMemsetAsync",
        "hipMemcpyWithStream",
    }
)


def short_kernel_name(name: str, limit: int = 90) -> str:
    """A kernel name a person can read: no return type, argument list or namespaces inside
    the template arguments, at most ``limit`` characters.

    'void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>,
    at::detail::Array<char*, 3> >(int, ...)' ->
    'at::native::vectorized_elementwise_kernel<4, CUDAFunctor_add<float>, Array<char*, 3> >'
    """
    s = name[5:] if name.startswith("void ") else name
    s = s.replace("(anonymous namespace)::", "")
    depth = 0
    for m in _BRACKET.finditer(s):  # only the brackets, not every character of 2 kB names
        ch = m.group()
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif depth == 0 and m.start() > 0:
            s = s[: m.start()]  # the argument list
            break
    k = s.find("<")
    if k > 0:
        s = s[:k] + _NAMESPACE.sub("", s[k:])
    s = s.strip()
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s or name


def is_tensor_core_kernel(name: str) -> bool:
    """By name: an MMA family, or a GEMM/conv kernel in a Tensor Core data type."""
    if _TENSOR_CORE.search(name):
        return True
    return is_matmul_or_conv_kernel(name) and _TENSOR_CORE_TYPES.search(name)


def is_matmul_or_conv_kernel(name: str) -> bool:
    return _MATMUL_CONV.search(name) and not _NOT_MATMUL.search(name)


def parse_memcpy(name: str) -> tuple[str, str, str]:
    """'Memcpy HtoD (Pageable -> Device)' -> ('HtoD', 'Pageable', 'Device')."""
    m = _MEMCPY_NAME.search(name)
    if m:
        return m.group(1), m.group(2), m.group(3)
    parts = name.split()
    return (parts[1] if len(parts) > 1 else name), "", ""
