/// Batch normalization in training mode over an NCHW tensor, with an optional fused activation:
/// `activation(scale[c] * (x - mean[c]) / sqrt(variance[c] + epsilon) + offset[c])`, where mean and
/// variance are the statistics of channel c over N, H and W.
///
/// Returns the output with the batch mean and the **biased** batch variance `[C]` (not on the tape).
/// The caller (NN's `BatchNorm2d`) updates its running statistics from them, with the unbiased
/// correction n / (n - 1) and momentum, as PyTorch does.
///
/// The forward pass reads the input twice: one statistics pass, one normalize + activate pass,
/// both parallel over (image, channel) planes. Backward goes through the batch statistics, for
/// the input, `scale` and `offset`, in two passes (per-channel sums, then the input gradient). It
/// keeps no full-size tensor beyond the input (and the output itself when the activation's
/// derivative reads it, as ELU's y + alpha does): the normalized value is recomputed from the input.
///
/// With `synchronizing` (synchronized batch norm over the processes of a data-parallel job), the
/// statistics are those of the union of every process's batch: the per-channel sums of the forward
/// pass (count, sum, sum of squares) and of the backward pass are passed to `synchronizing`, which
/// must replace each value by its sum over all processes. The gradients of `scale` and `offset` stay
/// this process's own share (the job sums parameter gradients afterwards); the input gradient is
/// that of the whole job's batch.
public func batchNormTraining(_ input: Tensor, scale: Tensor, offset: Tensor, epsilon: Float = 1e-5,
                              activation: Activation = .identity,
                              synchronizing: BatchNormStatisticsSum? = nil) -> (output: Tensor, mean: Tensor, variance: Tensor) {
    OpProfiler.measure(.batchNormForward) {
        let (n, c, h, w) = input.shape4("batchNormTraining")
        checkChannelVector(scale, c, "batchNormTraining", "scale")
        checkChannelVector(offset, c, "batchNormTraining", "offset")
        let hw = h * w, m = n * hw
        precondition(m > 1, "batchNormTraining: expected more than one value per channel, got input \(input.shape)")
        let x = input.storage.pointer
        var (meanD, varianceD) = BatchNormKernels.statistics(x, n: n, c: c, planeSize: hw)
        // The job's count for the backward formulas: this batch's, or the union's when synchronized.
        var md = Double(m)
        if let synchronizing {
            // Per channel: sum and sum of squares over this batch, then over every process's.
            var sums = meanD.map { $0 * md } + (0..<c).map { (varianceD[$0] + meanD[$0] * meanD[$0]) * md } + [md]
            synchronizing(&sums)
            md = sums[2 * c]
            meanD = (0..<c).map { sums[$0] / md }
            varianceD = (0..<c).map { max(0, sums[c + $0] / md - meanD[$0] * meanD[$0]) }
        }
        let invStd = varianceD.map { 1 / ($0 + Double(epsilon)).squareRoot() }
        let gamma = scale.scalars, beta = offset.scalars
        let a = (0..<c).map { Float(Double(gamma[$0]) * invStd[$0]) }
        let b = (0..<c).map { (ch: Int) -> Float in
            let shift: Double = meanD[ch] * Double(gamma[ch]) * invStd[ch]
            return Float(Double(beta[ch]) - shift)
        }
        let mean = meanD.map { Float($0) }

        var y = Tensor(uninitializedShape: input.shape)
        BatchNormKernels.normalize(x, y.storage.pointer, n: n, c: c, planeSize: hw, a: a, b: b, activation: activation)

        if let needs = Tensor.gradientNeeds(input, scale, offset) {
            let xv = input.detached
            // The activation's derivative reads either the output (ELU) or the input (ReLU).
            let yv = activation.derivativeUsesOutput ? y.detached : xv
            y.recordOp("batchNormTraining", profiledAs: .batchNormBackward, inputs: [input, scale, offset]) { g in
                let (localDz, localDzCentered) = BatchNormKernels.backwardSums(
                    xv.storage.pointer, yv.storage.pointer, g.storage.pointer, n: n, c: c, planeSize: hw, a: a, b: b, mean: mean,
                    activation: activation)
                // With xhat = (x - mean) * invStd and dz the gradient before the activation:
                // dscale = sum(dz * xhat), doffset = sum(dz),
                // dx = scale * invStd * (dz - sum(dz) / m - xhat * sum(dz * xhat) / m).
                var sumDz = localDz, sumDzCentered = localDzCentered
                if let synchronizing {
                    var sums = localDz + localDzCentered
                    synchronizing(&sums)
                    sumDz = Array(sums[0..<c])
                    sumDzCentered = Array(sums[c..<(2 * c)])
                }
                var dx: Tensor? = nil
                if needs[0] {
                    let coefficientCentered = (0..<c).map { (ch: Int) -> Float in
                        let v: Double = Double(a[ch]) * invStd[ch] * invStd[ch] * sumDzCentered[ch] / md
                        return Float(-v)
                    }
                    let constant = (0..<c).map { (ch: Int) -> Float in Float(-Double(a[ch]) * sumDz[ch] / md) }
                    let out = Tensor(uninitializedShape: xv.shape)
                    BatchNormKernels.backwardInput(xv.storage.pointer, yv.storage.pointer, g.storage.pointer,
                                                   out.storage.pointer,
                                                   n: n, c: c, planeSize: hw, a: a, b: b, mean: mean,
                                                   coefficientDz: a, coefficientCentered: coefficientCentered,
                                                   constant: constant, activation: activation)
                    dx = out
                }
                let dScale = needs[1] ? Tensor(shape: [c], scalars: (0..<c).map { Float(localDzCentered[$0] * invStd[$0]) }) : nil
                let dOffset = needs[2] ? Tensor(shape: [c], scalars: localDz.map { Float($0) }) : nil
                return [dx, dScale, dOffset]
            }
        }
        return (y, Tensor(shape: [c], scalars: mean), Tensor(shape: [c], scalars: varianceD.map { Float($0) }))
    }
}

/// Replaces each value of per-channel batch-norm sums by its sum over the processes of a
/// data-parallel job (for example an MPI all-reduce); every process calls it at the same points.
public typealias BatchNormStatisticsSum = (inout [Double]) -> Void

/// Batch normalization in evaluation mode with given per-channel statistics `mean` and `variance`
/// `[C]`, and an optional fused activation. One pass over the input. Differentiable with respect to
/// the input, `scale` and `offset` (the statistics are constants here: no gradient reaches them).
public func batchNormInference(_ input: Tensor, scale: Tensor, offset: Tensor, mean: Tensor, variance: Tensor,
                               epsilon: Float = 1e-5, activation: Activation = .identity) -> Tensor {
    OpProfiler.measure(.batchNormForward) {
        let (n, c, h, w) = input.shape4("batchNormInference")
        checkChannelVector(scale, c, "batchNormInference", "scale")
        checkChannelVector(offset, c, "batchNormInference", "offset")
        checkChannelVector(mean, c, "batchNormInference", "mean")
        checkChannelVector(variance, c, "batchNormInference", "variance")
        let hw = h * w
        let gamma = scale.scalars, beta = offset.scalars, meanValues = mean.scalars
        let invStd = variance.scalars.map { 1 / (Double($0) + Double(epsilon)).squareRoot() }
        let a = (0..<c).map { Float(Double(gamma[$0]) * invStd[$0]) }
        let b = (0..<c).map { (ch: Int) -> Float in
            let shift: Double = Double(meanValues[ch]) * Double(gamma[ch]) * invStd[ch]
            return Float(Double(beta[ch]) - shift)
        }

        var y = Tensor(uninitializedShape: input.shape)
        let x = input.storage.pointer
        BatchNormKernels.normalize(x, y.storage.pointer, n: n, c: c, planeSize: hw, a: a, b: b, activation: activation)

        if let needs = Tensor.gradientNeeds(input, scale, offset) {
            let xv = input.detached
            // The activation's derivative reads either the output (ELU) or the input (ReLU).
            let yv = activation.derivativeUsesOutput ? y.detached : xv
            y.recordOp("batchNormInference", profiledAs: .batchNormBackward, inputs: [input, scale, offset]) { g in
                var dScale: Tensor? = nil, dOffset: Tensor? = nil, dx: Tensor? = nil
                if needs[1] || needs[2] {
                    let (sumDz, sumDzCentered) = BatchNormKernels.backwardSums(
                        xv.storage.pointer, yv.storage.pointer, g.storage.pointer, n: n, c: c, planeSize: hw, a: a, b: b,
                        mean: meanValues, activation: activation)
                    if needs[1] { dScale = Tensor(shape: [c], scalars: (0..<c).map { Float(sumDzCentered[$0] * invStd[$0]) }) }
                    if needs[2] { dOffset = Tensor(shape: [c], scalars: sumDz.map { Float($0) }) }
                }
                if needs[0] {
                    // dx = scale * invStd * dz
                    let zeros = [Float](repeating: 0, count: c)
                    let out = Tensor(uninitializedShape: xv.shape)
                    BatchNormKernels.backwardInput(xv.storage.pointer, yv.storage.pointer, g.storage.pointer,
                                                   out.storage.pointer,
                                                   n: n, c: c, planeSize: hw, a: a, b: b, mean: meanValues,
                                                   coefficientDz: a, coefficientCentered: zeros, constant: zeros,
                                                   activation: activation)
                    dx = out
                }
                return [dx, dScale, dOffset]
            }
        }
        return y
    }
}

private func checkChannelVector(_ t: Tensor, _ channels: Int, _ op: String, _ name: String) {
    precondition(t.shape == [channels], "\(op): \(name) must have shape [\(channels)], got \(t.shape)")
}
