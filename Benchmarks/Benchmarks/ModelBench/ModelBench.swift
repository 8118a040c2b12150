import Benchmark
import UNet

/// The whole U-Net: one training step (forward, cross-entropy, backward, Adam) and one inference
/// forward, at base 16 on 256^2 (small enough for many iterations). The figures compared with
/// PyTorch in docs/PERFORMANCE.md come from `unet bench train|infer` at the reference's sizes.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal, .peakMemoryResident],
                                           warmupIterations: 1, maxDuration: .seconds(5), maxIterations: 20)
    var rng = SeededGenerator(seed: 0)
    let model = UNetModel(configuration: UNetConfiguration(baseFilters: 16), generator: &rng)
    let optimizer = Adam(model, learningRate: 1e-4)
    let images = Tensor.randomNormal([1, 1, 256, 256], generator: &rng)
    let targets = Tensor(shape: [1, 256, 256], scalars: (0..<(256 * 256)).map { Float($0 % 3 == 0 ? 0 : 1) })

    Benchmark("unet base16 train step 1x256^2") { benchmark in
        model.train()
        for _ in benchmark.scaledIterations {
            optimizer.zeroGradients()
            let loss = softmaxCrossEntropy(logits: model(images), targets: targets)
            loss.backward()
            optimizer.step()
            blackHole(loss.scalar)
        }
    }

    Benchmark("unet base16 inference 1x256^2") { benchmark in
        model.eval()
        for _ in benchmark.scaledIterations { blackHole(withoutGradients { model(images) }) }
    }
}
