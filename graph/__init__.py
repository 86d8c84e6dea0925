"""The engine-agnostic core of Weft: node protocol, registry, prompt validation, executor,
caching, job queue and history. Standard library only (never torch), so it can be imported,
tested and reasoned about without the diffusion engine."""
