"""Reference slice prover: ONNX slicing and the ezkl / gnark backends."""
