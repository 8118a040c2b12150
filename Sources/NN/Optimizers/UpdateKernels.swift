/// The in-place update loops of the optimizers: one pass over raw pointers per parameter, split into
/// contiguous ranges across threads for large tensors. No allocation.
enum UpdateKernels {
    /// Below this many elements an update runs on the calling thread.
    static let parallelThreshold = 1 << 16

    /// PyTorch SGD: `g = grad + wd*p`; with momentum `b = g` on the first step, else
    /// `b = momentum*b + (1-dampening)*g`; `g = nesterov ? g + momentum*b : b`; `p -= lr*g`.
    static func sgd(parameter p: UnsafeMutablePointer<Float>, gradient gp: UnsafePointer<Float>,
                    momentumBuffer: UnsafeMutablePointer<Float>?, count: Int, firstStep: Bool,
                    learningRate lr: Float, momentum: Float, dampening: Float, weightDecay wd: Float,
                    nesterov: Bool) {
        let keep = 1 - dampening
        Threads.parallelRanges(count, minimumChunk: parallelThreshold) { r in
            guard let b = momentumBuffer else {
                if wd == 0 {
                    for i in r { p[i] -= lr * gp[i] }
                } else {
                    for i in r { p[i] -= lr * (gp[i] + wd * p[i]) }
                }
                return
            }
            switch (firstStep, nesterov) {
            case (true, false):
                for i in r { let g = gp[i] + wd * p[i]; b[i] = g; p[i] -= lr * g }
            case (true, true):
                for i in r { let g = gp[i] + wd * p[i]; b[i] = g; p[i] -= lr * (g + momentum * g) }
            case (false, false):
                for i in r {
                    let g = gp[i] + wd * p[i]
                    let m = momentum * b[i] + keep * g
                    b[i] = m
                    p[i] -= lr * m
                }
            case (false, true):
                for i in r {
                    let g = gp[i] + wd * p[i]
                    let m = momentum * b[i] + keep * g
                    b[i] = m
                    p[i] -= lr * (g + momentum * m)
                }
            }
        }
    }

    /// PyTorch Adam/AdamW for one parameter at step `t`:
    /// `p *= 1 - lr*decoupledDecay`; `g = grad + l2*p`; `m += (1-b1)*(g-m)`; `v = b2*v + (1-b2)*g*g`;
    /// `p -= (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)`.
    static func adam(parameter p: UnsafeMutablePointer<Float>, gradient gp: UnsafePointer<Float>,
                     m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
                     step t: Int, learningRate lr: Float, beta1: Float, beta2: Float, epsilon: Float,
                     l2: Float, decoupledDecay: Float) {
        // Bias corrections in Double, as PyTorch computes them in Python floats.
        let bc1 = 1 - pow(Double(beta1), Double(t))
        let bc2 = 1 - pow(Double(beta2), Double(t))
        let stepSize = Float(Double(lr) / bc1)
        let bc2Sqrt = Float(bc2.squareRoot())
        let decay = 1 - lr * decoupledDecay
        let w1 = 1 - beta1, w2 = 1 - beta2
        Threads.parallelRanges(count, minimumChunk: parallelThreshold) { r in
            for i in r {
                var x = p[i]
                if decoupledDecay != 0 { x *= decay }
                let g = gp[i] + l2 * x
                let mi = m[i] + w1 * (g - m[i])
                let vi = beta2 * v[i] + w2 * g * g
                m[i] = mi
                v[i] = vi
                p[i] = x - stepSize * (mi / (vi.squareRoot() / bc2Sqrt + epsilon))
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
