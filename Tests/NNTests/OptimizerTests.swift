import NN
import XCTest

/// Sets a parameter's gradient to `values` (a leaf's backward accumulates its seed).
func setGradient(_ p: Parameter, _ values: [Float]) {
    p.zeroGradient()
    p.value.backward(seed: Tensor(shape: p.shape, scalars: values))
}

/// One parameter w = [1, -2] and the gradients of two steps, used by the hand-computed cases below.
private func twoSteps(_ make: ([(String, Parameter)]) -> Optimizer) -> (afterOne: [Float], afterTwo: [Float], Optimizer) {
    let w = Parameter(Tensor(shape: [2], scalars: [1, -2]))
    let optimizer = make([("w", w)])
    setGradient(w, [0.5, 1])
    optimizer.step()
    let one = w.value.scalars
    setGradient(w, [-1, 0.25])
    optimizer.step()
    return (one, w.value.scalars, optimizer)
}

final class OptimizerTests: XCTestCase {
    // Hand computation, lr 0.1, weight decay 0.1, momentum 0.9, w0 = [1, -2]:
    // step 1: g = [0.5, 1] + 0.1 w = [0.6, 0.8]; b = g; w = w - 0.1 b = [0.94, -2.08]
    // step 2: g = [-1, 0.25] + 0.1 w = [-0.906, 0.042]; b = 0.9 [0.6, 0.8] + g = [-0.366, 0.762];
    //         w = [0.94, -2.08] - 0.1 b = [0.9766, -2.1562]
    func testSGDMomentumWeightDecayStepsMatchHandComputation() {
        let (one, two, _) = twoSteps { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, weightDecay: 0.1) }
        assertClose(one, [0.94, -2.08])
        assertClose(two, [0.9766, -2.1562])
    }

    // Nesterov: step 1: update g + 0.9 b = 1.9 [0.6, 0.8]; w = [0.886, -2.152]
    // step 2: g = [-1, 0.25] + 0.1 w = [-0.9114, 0.0348]; b = [0.54, 0.72] + g = [-0.3714, 0.7548];
    //         update = g + 0.9 b = [-1.24566, 0.71412]; w = [1.010566, -2.223412]
    func testSGDNesterovStepsMatchHandComputation() {
        let (one, two, _) = twoSteps {
            SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov: true)
        }
        assertClose(one, [0.886, -2.152])
        assertClose(two, [1.010566, -2.223412])
    }

    func testPlainSGDAndDampening() {
        let (one, two, _) = twoSteps { SGD(parameters: $0, learningRate: 0.5) }
        assertClose(one, [0.75, -2.5])
        assertClose(two, [1.25, -2.625])
        // dampening 0.5: b1 = g1 = [0.5, 1]; b2 = 0.9 b1 + 0.5 g2 = [-0.05, 1.025]
        let (_, damped, _) = twoSteps { SGD(parameters: $0, learningRate: 1, momentum: 0.9, dampening: 0.5) }
        assertClose(damped, [1 - 0.5 + 0.05, -2 - 1 - 1.025])
    }

    // Adam, lr 0.1, betas (0.9, 0.999), eps 1e-8:
    // step 1: m = 0.1 g, v = 0.001 g²; m̂ = g, v̂ = g²; w -= 0.1 g / (|g| + eps) = [0.9, -2.1]
    // step 2: m = [-0.055, 0.115], v = [0.00124975, 0.0010615]; m̂ = m / 0.19, v̂ = v / 0.001999;
    //         w -= 0.1 m̂ / (sqrt(v̂) + eps) -> [0.93661035, -2.18305975]
    func testAdamStepsMatchHandComputation() {
        let (one, two, optimizer) = twoSteps { Adam(parameters: $0, learningRate: 0.1) }
        assertClose(one, [0.9, -2.1])
        assertClose(two, [0.93661035, -2.18305975])
        XCTAssertEqual((optimizer as! Adam).stepCount(of: "w"), 2)
        let state = optimizer.exportState()
        assertClose(state.tensor("m.w")!.scalars, [-0.055, 0.115])
        assertClose(state.tensor("v.w")!.scalars, [0.00124975, 0.0010615])
        XCTAssertEqual(state.scalars["step.w"], 2)
    }

    // Adam with L2 weight decay 0.1 adds 0.1 w to the gradient: step 2 -> [0.92526352, -2.17064004].
    // AdamW shrinks w by (1 - 0.1 * 0.1) first: step 1 -> [0.89, -2.08], step 2 -> [0.91771035, -2.14225975].
    func testAdamWeightDecayAndAdamWDecoupledDecay() {
        let (_, adam, _) = twoSteps { Adam(parameters: $0, learningRate: 0.1, weightDecay: 0.1) }
        assertClose(adam, [0.92526352, -2.17064004])
        let (one, two, optimizer) = twoSteps { AdamW(parameters: $0, learningRate: 0.1, weightDecay: 0.1) }
        assertClose(one, [0.89, -2.08])
        assertClose(two, [0.91771035, -2.14225975])
        XCTAssertEqual(optimizer.kind, "adamw")
    }

    func testStepUpdatesInPlaceAndSkipsFrozenOrGradientlessParameters() {
        let a = Parameter(Tensor(repeating: 1, shape: [300_000]))
        let frozen = Parameter(Tensor(shape: [2], scalars: [3, 4]), trainable: false)
        let idle = Parameter(Tensor(shape: [2], scalars: [5, 6]))
        let optimizer = Adam(parameters: [("a", a), ("frozen", frozen), ("idle", idle)], learningRate: 0.01)
        let address = a.value.withUnsafeBufferPointer { $0.baseAddress }
        for _ in 0..<3 {
            a.zeroGradient()
            a.value.backward(seed: Tensor(repeating: 2, shape: [300_000]))
            optimizer.step()
        }
        XCTAssertEqual(a.value.withUnsafeBufferPointer { $0.baseAddress }, address, "the update must not reallocate")
        XCTAssertTrue(a.value.requiresGradient)
        XCTAssertEqual(a.value[0], a.value[299_999])
        XCTAssertEqual(a.value[0], 1 - 0.03, accuracy: 1e-5)
        XCTAssertEqual(frozen.value.scalars, [3, 4])
        XCTAssertEqual(idle.value.scalars, [5, 6])
        XCTAssertEqual(optimizer.exportState().tensors.map(\.0), ["m.a", "v.a"])
    }

    func testStateExportImportContinuesIdentically() throws {
        func run(split: Bool) throws -> [UInt32] {
            let w = Parameter(Tensor(shape: [3], scalars: [0.3, -0.2, 0.9]))
            var optimizer: Optimizer = SGD(parameters: [("w", w)], learningRate: 0.05, momentum: 0.8, nesterov: true)
            for step in 0..<4 {
                if split && step == 2 {
                    let state = optimizer.exportState()
                    optimizer = SGD(parameters: [("w", w)], learningRate: 1, momentum: 0.8, nesterov: true)
                    try optimizer.importState(state)
                    XCTAssertEqual(optimizer.learningRate, 0.05)
                }
                setGradient(w, [Float(step) - 1, 0.5, -0.25 * Float(step)])
                optimizer.step()
            }
            return bits(w.value)
        }
        XCTAssertEqual(try run(split: true), try run(split: false))
    }

    func testImportRejectsMismatchedState() {
        let w = Parameter(Tensor.zeros([2]))
        let adam = Adam(parameters: [("w", w)])
        let good = Tensor.zeros([2])
        XCTAssertThrowsError(try adam.importState(OptimizerState(tensors: [("m.w", Tensor.zeros([3])), ("v.w", good)],
                                                                 scalars: ["step.w": 1]))) {
            XCTAssertTrue("\($0)".contains("shape [3]"), "\($0)")
        }
        XCTAssertThrowsError(try adam.importState(OptimizerState(tensors: [("m.q", good), ("v.q", good)], scalars: ["step.q": 1])))
        XCTAssertThrowsError(try adam.importState(OptimizerState(tensors: [("m.w", good)], scalars: ["step.w": 1]))) {
            XCTAssertTrue("\($0)".contains("'v.w'"), "\($0)")
        }
        XCTAssertThrowsError(try adam.importState(OptimizerState(tensors: [("m.w", good), ("v.w", good)])))
        XCTAssertNoThrow(try adam.importState(OptimizerState(tensors: [("m.w", good), ("v.w", good)], scalars: ["step.w": 7])))
        XCTAssertEqual(adam.stepCount(of: "w"), 7)
    }

    func testGlobalNormClipping() {
        let a = Parameter(Tensor.zeros([2])), b = Parameter(Tensor.zeros([1])), none = Parameter(Tensor.zeros([1]))
        setGradient(a, [3, 0])
        setGradient(b, [4])
        XCTAssertEqual(GradientClipping.globalNorm([a, b, none]), 5)
        XCTAssertEqual(GradientClipping.clipGlobalNorm([a, b, none], maxNorm: 10), 5)
        XCTAssertEqual(a.gradient!.scalars, [3, 0])
        XCTAssertEqual(GradientClipping.clipGlobalNorm([a, b, none], maxNorm: 1), 5)
        assertClose(a.gradient!.scalars, [0.6, 0], tolerance: 1e-6)
        assertClose(b.gradient!.scalars, [0.8], tolerance: 1e-6)
        XCTAssertNil(none.gradient)
        XCTAssertEqual(GradientClipping.globalNorm([a, b]), 1, accuracy: 1e-5)
    }

    func testL2PenaltyValueGradientAndSelection() {
        let net = Affine([1, -2, 3, 0.5], shape: [2, 2], bias: [10, 20])
        let penalty = l2Penalty(of: net, lambda: 0.1)  // weights only: 0.1 * (1 + 4 + 9 + 0.25)
        XCTAssertEqual(penalty.scalar, 1.425, accuracy: 1e-6)
        penalty.backward()
        assertClose(net.weight.gradient!.scalars, [0.2, -0.4, 0.6, 0.1])
        XCTAssertNil(net.bias.gradient)
        XCTAssertEqual(l2Penalty(of: net, lambda: 1, selecting: .all).scalar, 14.25 + 500, accuracy: 1e-3)
        XCTAssertEqual(l2Penalty(of: net, lambda: 1, selecting: .matching { name, _ in name == "bias" }).scalar, 500)
        XCTAssertEqual(l2Penalty(of: net, lambda: 1, selecting: .matching { _, _ in false }).scalar, 0)
    }

    func testLearningRateSchedules() {
        let step = StepSchedule(initialRate: 1, stepSize: 2, gamma: 0.5)
        XCTAssertEqual((0..<6).map { step.rate(atEpoch: $0) }, [1, 1, 0.5, 0.5, 0.25, 0.25])
        let cosine = CosineSchedule(initialRate: 1, periodEpochs: 4, minimumRate: 0.2)
        assertClose((0...5).map { cosine.rate(atEpoch: $0) }, [1, 0.2 + 0.8 * 0.8535533905932737, 0.6,
                                                              0.2 + 0.8 * 0.14644660940672624, 0.2, 0.2])
        let w = Parameter(Tensor.zeros([1]))
        let optimizer = SGD(parameters: [("w", w)], learningRate: 1)
        var plateau = ReduceOnPlateau(factor: 0.5, patience: 1, cooldown: 1)
        let metrics: [Double] = [10, 9, 9, 9, 9, 9, 8]
        var rates: [Float] = []
        for (epoch, metric) in metrics.enumerated() { rates.append(plateau.update(optimizer, afterEpoch: epoch, metric: metric)) }
        // bad epochs: e2 -> 1, e3 -> 2 > 1: halve (cooldown 1); e4: cooldown resets; e5 -> 1; e6 improves.
        XCTAssertEqual(rates, [1, 1, 1, 0.5, 0.5, 0.5, 0.5])
        var restored = ReduceOnPlateau(factor: 0.5, patience: 1, cooldown: 1)
        XCTAssertNoThrow(try restored.importState(plateau.exportState()))
        XCTAssertEqual(restored.best, 8)
        var schedule: LearningRateSchedule = StepSchedule(initialRate: 0.1, stepSize: 1, gamma: 0.1)
        XCTAssertEqual(schedule.update(optimizer, afterEpoch: 0), 0.01, accuracy: 1e-9)
        XCTAssertEqual(optimizer.learningRate, 0.01, accuracy: 1e-9)
    }
}
