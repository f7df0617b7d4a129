//! Host bindings generated from the contract: every import the host implements and every
//! export it may call, for all roles at once. The world below is the host's own view; no
//! component targets it.

wasmtime::component::bindgen!({
    path: [
        "wit/streaming",
        "wit/filtering",
        "wit/aggregation",
        "wit/capabilities",
        "wit/batching",
        "wit/attributes",
        "wit/runtime",
        "wit/buffers",
    ],
    inline: "
        package torvyn:host;

        world host {
            import torvyn:streaming/types@0.1.0;
            import torvyn:streaming/buffer-allocator@0.1.0;
            import torvyn:capabilities/capability-query@0.1.0;
            import torvyn:attributes/element-attributes@0.1.0;
            import torvyn:runtime/metrics@0.1.0;
            import torvyn:buffers/buffer-builder@0.1.0;
            export torvyn:streaming/source@0.1.0;
            export torvyn:streaming/processor@0.1.0;
            export torvyn:streaming/sink@0.1.0;
            export torvyn:streaming/lifecycle@0.1.0;
            export torvyn:filtering/filter@0.1.0;
            export torvyn:filtering/router@0.1.0;
            export torvyn:aggregation/aggregator@0.1.0;
            export torvyn:batching/batch-source@0.1.0;
            export torvyn:batching/batch-processor@0.1.0;
            export torvyn:batching/batch-sink@0.1.0;
        }
    ",
    world: "torvyn:host/host",
    imports: { default: trappable },
    exports: { default: async },
});
