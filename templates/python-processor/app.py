"""A Torvyn processor in Python that upper-cases text."""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import buffer_allocator, types


class Processor(exports.Processor):
    def process(self, input: types.StreamElement) -> types.ProcessResult:
        try:
            text = input.payload.read_all().decode("utf-8")
        except UnicodeDecodeError:
            # A `process-error` goes back to the host, whose error policy decides; any
            # other exception traps the component, which then starts afresh.
            raise Err(types.ProcessError_InvalidInput(
                f"element {input.meta.sequence} is not UTF-8"))
        data = text.upper().encode("utf-8")
        # The host owns every buffer: `with` gives back our handle to the one we fill
        # as soon as it is frozen, not whenever Python collects it.
        with buffer_allocator.allocate(len(data)) as out:
            out.append(data)
            out.set_content_type(input.meta.content_type)
            payload = out.freeze()
        return types.ProcessResult_Emit(types.OutputElement(input.meta, payload))
