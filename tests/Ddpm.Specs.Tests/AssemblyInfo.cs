// Tests seed TorchSharp's global generator and then build models from it; run them one at a time
// so no other test draws from the generator in between.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
