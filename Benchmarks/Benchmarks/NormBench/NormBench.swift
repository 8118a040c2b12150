import Benchmark
import Tensor

/// Pooling, batch norm (alone and with its fused activations), standalone activations and dropout
/// on the U-Net's first-level shape, 1 x 64 x 512^2 (16.8 M floats, 64 MiB per tensor), with two
/// bandwidth references. Every row goes through the public API, so outputs come from the storage
/// pool as in training. Figures and their PyTorch counterparts: docs/PERFORMANCE.md, "Pooling,
/// batch norm, activations".
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .peakMemoryResident],
                                           warmupIterations: 1, maxDuration: .seconds(3), maxIterations: 20)

    let shape = [1, 64, 512, 512]
    var rng = SeededGenerator(seed: 1)
    let x = Tensor.randomUniform(shape, lowerBound: -2, upperBound: 2, generator: &rng)
    let g = Tensor.randomUniform(shape, lowerBound: -1, upperBound: 1, generator: &rng)
    let pooledG = Tensor.randomUniform([1, 64, 256, 256], lowerBound: -1, upperBound: 1, generator: &rng)
    let pooled3x3G = Tensor.randomUniform([1, 64, 255, 255], lowerBound: -1, upperBound: 1, generator: &rng)
    let scale = Tensor.ones([64]), offset = Tensor.zeros([64])
    let mean = Tensor.zeros([64]), variance = Tensor.ones([64])

    for (label, activation) in [("BN", Activation.identity), ("BN+ReLU", .relu), ("BN+ELU", .elu(alpha: 1))] {
        Benchmark("\(label) train forward") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(batchNormTraining(x, scale: scale, offset: offset, activation: activation).output)
            }
        }
        Benchmark("\(label) train forward+backward") { benchmark in
            for _ in benchmark.scaledIterations {
                let leaves = [x, scale, offset].map { $0.requiringGradient() }
                batchNormTraining(leaves[0], scale: leaves[1], offset: leaves[2], activation: activation)
                    .output.backward(seed: g)
                blackHole(leaves[0].gradient)
            }
        }
    }
    Benchmark("BN+ELU eval forward") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(batchNormInference(x, scale: scale, offset: offset, mean: mean, variance: variance,
                                         activation: .elu(alpha: 1)))
        }
    }
    Benchmark("BN then Tensor.elu (unfused) train forward+backward") { benchmark in
        for _ in benchmark.scaledIterations {
            let leaves = [x, scale, offset].map { $0.requiringGradient() }
            batchNormTraining(leaves[0], scale: leaves[1], offset: leaves[2]).output.elu().backward(seed: g)
            blackHole(leaves[0].gradient)
        }
    }

    for activation in [Activation.relu, .elu(alpha: 1)] {
        Benchmark("\(activation.name) forward") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(x.activated(activation)) }
        }
        Benchmark("\(activation.name) forward+backward") { benchmark in
            for _ in benchmark.scaledIterations {
                let leaf = x.requiringGradient()
                leaf.activated(activation).backward(seed: g)
                blackHole(leaf.gradient)
            }
        }
    }

    Benchmark("maxPool2d 2x2 forward (no tape)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(withoutGradients { maxPool2d(x) }) }
    }
    Benchmark("maxPool2d 2x2 forward (recording)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(maxPool2d(x.requiringGradient())) }
    }
    Benchmark("maxPool2d 2x2 forward+backward") { benchmark in
        for _ in benchmark.scaledIterations {
            let leaf = x.requiringGradient()
            maxPool2d(leaf).backward(seed: pooledG)
            blackHole(leaf.gradient)
        }
    }
    Benchmark("maxPool2d 3x3 stride 2 forward+backward") { benchmark in
        for _ in benchmark.scaledIterations {
            let leaf = x.requiringGradient()
            maxPool2d(leaf, kernelSize: 3, stride: 2).backward(seed: pooled3x3G)
            blackHole(leaf.gradient)
        }
    }

    Benchmark("dropout p=0.5 forward") { benchmark in
        for _ in benchmark.scaledIterations {
            var r = SeededGenerator(seed: 3)
            blackHole(dropout(x, probability: 0.5, generator: &r))
        }
    }
    Benchmark("dropout p=0.5 forward+backward") { benchmark in
        for _ in benchmark.scaledIterations {
            var r = SeededGenerator(seed: 3)
            let leaf = x.requiringGradient()
            dropout(leaf, probability: 0.5, generator: &r).backward(seed: g)
            blackHole(leaf.gradient)
        }
    }

    // Bandwidth references: a copy into an existing tensor, and into a new one (pool or page faults).
    let reused = Tensor(uninitializedShape: shape)
    Benchmark("memcpy into an existing tensor") { benchmark in
        for _ in benchmark.scaledIterations {
            reused.withUnsafeBufferPointer { destination in
                x.withUnsafeBufferPointer {
                    UnsafeMutablePointer(mutating: destination.baseAddress!).update(from: $0.baseAddress!, count: $0.count)
                }
            }
        }
    }
    Benchmark("memcpy into a new tensor") { benchmark in
        for _ in benchmark.scaledIterations {
            var y = Tensor(uninitializedShape: shape)
            y.withUnsafeMutableBufferPointer { destination in
                x.withUnsafeBufferPointer { destination.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
            }
            blackHole(y)
        }
    }
}
