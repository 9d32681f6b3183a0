#!/usr/bin/python3
"""criu-image-descriptors.py PYCRIU_DIR OUT ROOT.proto... — write a FileDescriptorSet of CRIU's
image protos (ROOTs and everything they import) for protoc's --descriptor_set_in.

CRIU's image .proto files are not shipped by Debian; python3-pycriu ships the generated
*_pb2.py modules, and each embeds its file's serialized FileDescriptorProto. PYCRIU_DIR is the
directory that holds the `pycriu` package (e.g. an unpacked python3-pycriu .deb's
usr/lib/python3/dist-packages). Prints the file names, dependencies first, one per line.
"""
import importlib
import sys

from google.protobuf import descriptor_pb2


def main() -> None:
    pycriu_dir, out, roots = sys.argv[1], sys.argv[2], sys.argv[3:]
    sys.path.insert(0, pycriu_dir)
    ordered, seen = [], set()

    def visit(desc) -> None:
        if desc.name in seen:
            return
        seen.add(desc.name)
        for dep in desc.dependencies:
            visit(dep)
        ordered.append(desc)

    for root in roots:
        module = root[: -len(".proto")].replace("-", "_") + "_pb2"
        visit(importlib.import_module("pycriu.images." + module).DESCRIPTOR)

    fds = descriptor_pb2.FileDescriptorSet()
    for desc in ordered:
        proto = fds.file.add()
        desc.CopyToProto(proto)
        print(desc.name)
    with open(out, "wb") as f:
        f.write(fds.SerializeToString())


main()
