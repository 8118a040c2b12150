import NN
import XCTest

/// A small U-Net-shaped network built only from NN layers: conv + fused BN/ReLU, pooling, a
/// transposed convolution, a skip connection, ELU and dropout.
final class TinySegmenter: Module {
    let encoder: Conv2d
    let norm = BatchNorm2d(channels: 8)
    let pool = MaxPool2d(kernelSize: 2)
    let middle: Conv2d
    let up: ConvTranspose2d
    let decoder: Sequential
    let head: Conv2d

    init(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        encoder = Conv2d(inputChannels: 1, outputChannels: 8, kernelSize: 3, padding: .same, bias: false, generator: &rng)
        middle = Conv2d(inputChannels: 8, outputChannels: 16, kernelSize: 3, padding: .same, generator: &rng)
        up = ConvTranspose2d(inputChannels: 16, outputChannels: 8, kernelSize: 2, stride: 2, generator: &rng)
        decoder = Sequential {
            Conv2d(inputChannels: 16, outputChannels: 8, kernelSize: 3, padding: .same, generator: &rng)
            ELU()
            Dropout(probability: 0.1, seed: seed)
        }
        head = Conv2d(inputChannels: 8, outputChannels: 2, kernelSize: 1, weightInitializer: .glorotUniform(), generator: &rng)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let e = norm(encoder(x), activation: .relu)
        let m = middle(pool(e)).relu()
        let d = decoder(Tensor.concatenate([e, up(m)], alongAxis: 1))
        return head(d)
    }
}

/// Images `[n, 1, size, size]` of Gaussian noise with one or two bright squares, and their masks `[n, size, size]`.
func brightSquares(count n: Int, size: Int, generator rng: inout SeededGenerator) -> (images: Tensor, labels: Tensor) {
    var images = Tensor.randomNormal([n, 1, size, size], standardDeviation: 0.3, generator: &rng)
    var labels = Tensor.zeros([n, size, size])
    for i in 0..<n {
        for _ in 0..<(1 + rng.nextInt(in: 0..<2)) {
            let side = rng.nextInt(in: 3..<7)
            let top = rng.nextInt(in: 0..<(size - side)), left = rng.nextInt(in: 0..<(size - side))
            for y in top..<(top + side) {
                for x in left..<(left + side) where labels[i, y, x] == 0 {
                    images[i, 0, y, x] += 1
                    labels[i, y, x] = 1
                }
            }
        }
    }
    return (images, labels)
}

/// Fraction of pixels whose arg-max class equals the label.
func pixelAccuracy(logits: Tensor, labels: Tensor) -> Double {
    let predicted = logits.argmax(alongAxis: 1).scalars, truth = labels.scalars
    return Double(zip(predicted, truth).filter { $0 == $1 }.count) / Double(truth.count)
}

final class LayerTests: XCTestCase {
    func testLayerNamesMatchPyTorch() {
        let net = TinySegmenter(seed: 1)
        XCTAssertEqual(net.namedParameters().map(\.0), [
            "encoder.weight", "norm.weight", "norm.bias", "middle.weight", "middle.bias", "up.weight", "up.bias",
            "decoder.0.weight", "decoder.0.bias", "head.weight", "head.bias",
        ])
        XCTAssertEqual(net.namedBuffers().map(\.0), ["norm.running_mean", "norm.running_var", "norm.num_batches_tracked"])
        XCTAssertEqual(net.up.weight.shape, [16, 8, 2, 2], "transposed-conv weight is [in, out, k, k]")
        XCTAssertEqual(net.middle.weight.shape, [16, 8, 3, 3], "conv weight is [out, in, k, k]")
        XCTAssertEqual(net.namedChildren.map(\.0), ["encoder", "norm", "pool", "middle", "up", "decoder", "head"])
        XCTAssertEqual(net.decoder.namedChildren.map(\.0), ["0", "1", "2"])

        var rng = SeededGenerator(seed: 2)
        let seq = Sequential([Conv2d(inputChannels: 2, outputChannels: 3, kernelSize: 3, generator: &rng), BatchNorm2d(channels: 3),
                              ReLU(), Sequential([Identity(), Conv2d(inputChannels: 3, outputChannels: 1, kernelSize: 1, bias: false, generator: &rng)])])
        XCTAssertEqual(seq.stateDictionary().map(\.0), [
            "0.weight", "0.bias", "1.weight", "1.bias", "3.1.weight",
            "1.running_mean", "1.running_var", "1.num_batches_tracked",
        ])
    }

    func testConvolutionLayersShapesAndInitializers() {
        var rng = SeededGenerator(seed: 3)
        let conv = Conv2d(inputChannels: 16, outputChannels: 64, kernelSize: 3, stride: 2, padding: .same, generator: &rng)
        XCTAssertEqual(conv(Tensor.zeros([2, 16, 9, 9])).shape, [2, 64, 5, 5])
        XCTAssertEqual(conv.bias!.value.scalars, Array(repeating: 0, count: 64))
        // He normal: std = sqrt(2 / (16 * 9)).
        let w = conv.weight.value.scalars.map(Double.init)
        let mean = w.reduce(0, +) / Double(w.count)
        let std = (w.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(w.count)).squareRoot()
        XCTAssertEqual(std, (2.0 / 144).squareRoot(), accuracy: 0.01)
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        let dilated = Conv2d(inputChannels: 1, outputChannels: 1, kernelSize: 3, dilation: 2, bias: false, generator: &rng)
        XCTAssertEqual(dilated(Tensor.zeros([1, 1, 10, 10])).shape, [1, 1, 6, 6])
        XCTAssertNil(dilated.bias)
        XCTAssertEqual(dilated.namedParameters().map(\.0), ["weight"])

        let up = ConvTranspose2d(inputChannels: 4, outputChannels: 2, kernelSize: 2, stride: 2,
                                 weightInitializer: .glorotUniform(), generator: &rng)
        XCTAssertEqual(up(Tensor.zeros([1, 4, 5, 3])).shape, [1, 2, 10, 6])
        let limit = Float((6.0 / Double(2 * 4 + 4 * 4)).squareRoot())  // fanIn = Cout*k*k = 8, fanOut = Cin*k*k = 16
        XCTAssertTrue(up.weight.value.scalars.allSatisfy { abs($0) <= limit })
        XCTAssertEqual(Initializer.fans(of: [4, 2, 2, 2]).fanIn, 8)

        var a = SeededGenerator(seed: 7), b = SeededGenerator(seed: 7)
        XCTAssertEqual(bits(Conv2d(inputChannels: 3, outputChannels: 4, kernelSize: 3, generator: &a).weight.value),
                       bits(Conv2d(inputChannels: 3, outputChannels: 4, kernelSize: 3, generator: &b).weight.value),
                       "same seed, same weights")
        XCTAssertEqual(Initializer.zeros.makeTensor(shape: [2], generator: &a).scalars, [0, 0])
    }

    // Channel 0 holds [1, 2, 3, 6]: mean 3, biased variance 3.5, unbiased 14/3.
    // Channel 1 holds [0, 0, 4, 4]: mean 2, biased variance 4, unbiased 16/3.
    // After one batch (momentum 0.1): running_mean = 0.1 * mean, running_var = 0.9 + 0.1 * unbiased.
    // After the same batch again: running_mean = 0.19 * mean, running_var = 0.81 + 0.19 * unbiased.
    func testBatchNormRunningStatisticsFollowPyTorch() {
        let bn = BatchNorm2d(channels: 2)
        let x = Tensor(shape: [2, 2, 1, 2], scalars: [1, 2, 0, 0, 3, 6, 4, 4])
        let y = bn(x)
        assertClose(bn.runningMean.value.scalars, [0.3, 0.2])
        assertClose(bn.runningVariance.value.scalars, [0.9 + 0.1 * 14.0 / 3, 0.9 + 0.1 * 16.0 / 3])
        // Training output uses the batch statistics with the biased variance.
        assertClose(Array(y.scalars[0..<2]), [(1 - 3) / (3.5 + 1e-5).squareRoot(), (2 - 3) / (3.5 + 1e-5).squareRoot()], tolerance: 1e-5)
        _ = bn(x)
        assertClose(bn.runningMean.value.scalars, [0.57, 0.38])
        assertClose(bn.runningVariance.value.scalars, [0.81 + 0.19 * 14.0 / 3, 0.81 + 0.19 * 16.0 / 3])
        XCTAssertEqual(bn.batchesTracked.value.scalar, 2)

        // Evaluation normalizes with the running statistics and leaves them alone.
        bn.eval()
        let rm = bn.runningMean.value.scalars.map(Double.init), rv = bn.runningVariance.value.scalars.map(Double.init)
        let e = bn(x)
        assertClose(Array(e.scalars[0..<4]), [(1 - rm[0]) / (rv[0] + 1e-5).squareRoot(), (2 - rm[0]) / (rv[0] + 1e-5).squareRoot(),
                                              (0 - rm[1]) / (rv[1] + 1e-5).squareRoot(), (0 - rm[1]) / (rv[1] + 1e-5).squareRoot()],
                    tolerance: 1e-5)
        XCTAssertEqual(bn.batchesTracked.value.scalar, 2)

        // momentum nil: a cumulative average (factor 1 / batches seen).
        let cumulative = BatchNorm2d(channels: 2, momentum: nil)
        _ = cumulative(x)
        _ = cumulative(x * 2)
        assertClose(cumulative.runningMean.value.scalars, [(3 + 6) / 2, (2 + 4) / 2])
        assertClose(cumulative.runningVariance.value.scalars, [(14.0 / 3 + 56.0 / 3) / 2, (16.0 / 3 + 64.0 / 3) / 2], tolerance: 1e-5)
    }

    func testBatchNormFusedActivationEqualsSeparateActivation() {
        let bn = BatchNorm2d(channels: 3)
        bn.weight.assign(Tensor(shape: [3], scalars: [1.5, -0.5, 2]))
        bn.bias.assign(Tensor(shape: [3], scalars: [0.1, 0.2, -0.3]))
        let x = randomInput([2, 3, 4, 5], seed: 5)
        let fused = bn(x, activation: .elu(alpha: 1))
        let separate = bn(x).elu(alpha: 1)
        XCTAssertLessThan(fused.maxAbsoluteDifference(to: separate), 1e-5)
        bn.eval()
        XCTAssertLessThan(bn(x, activation: .relu).maxAbsoluteDifference(to: bn(x).relu()), 1e-5)
    }

    func testDropoutPoolingAndActivations() {
        let x = randomInput([2, 3, 8, 8], seed: 6)
        let drop = Dropout(probability: 0.5, seed: 3)
        let dropped = drop(x)
        let zeros = dropped.scalars.filter { $0 == 0 }.count
        XCTAssertGreaterThan(zeros, 384 / 4)
        XCTAssertLessThan(zeros, 384 * 3 / 4)
        XCTAssertEqual(bits(Dropout(probability: 0.5, seed: 3)(x)), bits(dropped), "seeded: the same mask")
        drop.eval()
        XCTAssertEqual(bits(drop(x)), bits(x))

        XCTAssertEqual(MaxPool2d()(x).shape, [2, 3, 4, 4])
        XCTAssertEqual(MaxPool2d(kernelSize: 3, stride: 1)(x).shape, [2, 3, 6, 6])
        XCTAssertEqual(MaxPool2d()(x)[0, 0, 0, 0], [x[0, 0, 0, 0], x[0, 0, 0, 1], x[0, 0, 1, 0], x[0, 0, 1, 1]].max()!)
        XCTAssertEqual(bits(ReLU()(x)), bits(x.relu()))
        XCTAssertEqual(bits(ELU(alpha: 0.5)(x)), bits(x.elu(alpha: 0.5)))
        XCTAssertEqual(bits(Identity()(x)), bits(x))
    }

    func testSmallCNNLearnsToSegmentBrightSquares() throws {
        let model = TinySegmenter(seed: 11)
        let optimizer = Adam(model, learningRate: 0.01)
        var rng = SeededGenerator(seed: 12)
        let start = ContinuousClock.now
        for _ in 0..<150 {
            let (images, labels) = brightSquares(count: 8, size: 16, generator: &rng)
            model.zeroGradients()
            let loss = softmaxCrossEntropy(logits: model(images), targets: labels) + l2Penalty(of: model, lambda: 1e-5)
            loss.backward()
            GradientClipping.clipGlobalNorm(of: model, maxNorm: 5)
            optimizer.step()
        }
        let elapsed = ContinuousClock.now - start
        model.eval()
        var test = SeededGenerator(seed: 99)
        let (images, labels) = brightSquares(count: 32, size: 16, generator: &test)
        let logits = withoutGradients { model(images) }
        let accuracy = pixelAccuracy(logits: logits, labels: labels)
        let background = 1 - Double(labels.scalars.reduce(0, +)) / Double(labels.count)
        print("TinySegmenter: pixel accuracy \(accuracy) (background share \(background)) after 150 steps in \(elapsed)")
        XCTAssertGreaterThanOrEqual(accuracy, 0.95)

        // The trained model survives a checkpoint round trip bit for bit (eval outputs included).
        let dir = makeTemporaryDirectory(self)
        try TrainingCheckpoint.save(model: model, optimizer: optimizer, metadata: ["epoch": "1"], to: dir + "/tiny.safetensors")
        let restored = TinySegmenter(seed: 0)
        let restoredOptimizer = Adam(restored, learningRate: 0.01)
        try TrainingCheckpoint.load(from: dir + "/tiny.safetensors", into: restored, optimizer: restoredOptimizer)
        restored.eval()
        XCTAssertEqual(bits(withoutGradients { restored(images) }), bits(logits))
    }
}

func randomInput(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    return Tensor.randomUniform(shape, lowerBound: -2, upperBound: 2, generator: &rng)
}
