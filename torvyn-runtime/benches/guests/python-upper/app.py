"""An upper-casing processor for torvyn:streaming@0.1.0 (world `transform`), built by
componentize-py: the large component (about 18 MB) of the `large-component` benchmarks."""

from wit_world import exports
from wit_world.imports import buffer_allocator, types


class Processor(exports.Processor):
    def process(self, input: types.StreamElement) -> types.ProcessResult:
        data = input.payload.read_all().upper()
        out = buffer_allocator.allocate(len(data))
        out.append(data)
        out.set_content_type(input.meta.content_type)
        frozen = out.freeze()
        # The husk's handle is dropped now, not whenever the collector runs.
        out.__exit__(None, None, None)
        meta = types.ElementMeta(
            input.meta.sequence, input.meta.timestamp_ns, input.meta.content_type
        )
        return types.ProcessResult_Emit(types.OutputElement(meta, frozen))
