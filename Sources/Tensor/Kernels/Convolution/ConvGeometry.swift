/// The shape of a 2-D convolution: NCHW input `[batch, inChannels, height, width]`, weight
/// `[outChannels, inChannels, kernelHeight, kernelWidth]`, one stride and one dilation for both axes,
/// zero padding per side. The output is `[batch, outChannels, outHeight, outWidth]`.
///
/// A transposed convolution is described by the convolution it is the adjoint of: its input is this
/// geometry's output and its output this geometry's input.
package struct ConvGeometry: Sendable, Equatable, CustomStringConvertible {
    package var batch: Int
    package var inChannels: Int
    package var height: Int
    package var width: Int
    package var outChannels: Int
    package var kernelHeight: Int
    package var kernelWidth: Int
    package var stride: Int
    package var dilation: Int
    package var padTop: Int
    package var padBottom: Int
    package var padLeft: Int
    package var padRight: Int

    /// A geometry; stride and dilation default to 1, padding to none.
    package init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                 kernelHeight: Int, kernelWidth: Int, stride: Int = 1, dilation: Int = 1,
                 padTop: Int = 0, padBottom: Int = 0, padLeft: Int = 0, padRight: Int = 0) {
        self.batch = batch; self.inChannels = inChannels; self.height = height; self.width = width
        self.outChannels = outChannels; self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.stride = stride; self.dilation = dilation
        self.padTop = padTop; self.padBottom = padBottom; self.padLeft = padLeft; self.padRight = padRight
    }

    /// Output rows: `floor((H + pads - dilation*(kh-1) - 1) / stride) + 1`.
    package var outHeight: Int { (height + padTop + padBottom - dilation * (kernelHeight - 1) - 1) / stride + 1 }
    /// Output columns.
    package var outWidth: Int { (width + padLeft + padRight - dilation * (kernelWidth - 1) - 1) / stride + 1 }
    /// Output pixels per channel plane.
    package var outPixels: Int { outHeight * outWidth }
    /// Input pixels per channel plane.
    package var inPixels: Int { height * width }
    /// Rows of the im2col matrix (the GEMM's inner dimension in forward): `inChannels * kh * kw`.
    package var columnRows: Int { inChannels * kernelHeight * kernelWidth }
    /// Multiply-adds times two of the forward pass (the same for each backward GEMM).
    package var flops: Double { 2 * Double(batch) * Double(outChannels) * Double(outPixels) * Double(columnRows) }

    /// 1x1, stride 1, no padding: the input planes are already the column matrix.
    var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && stride == 1 && padTop == 0 && padBottom == 0 && padLeft == 0 && padRight == 0
    }

    /// Kernel equal to the stride, no padding or dilation: every input pixel is under at most one
    /// kernel tap, so the adjoint of im2col is a plain scatter (U-Net's k2 s2 up-convolution).
    var isNonOverlapping: Bool {
        kernelHeight == stride && kernelWidth == stride && dilation == 1
            && padTop == 0 && padBottom == 0 && padLeft == 0 && padRight == 0
    }

    /// True when every extent is positive and the output is not empty.
    package var isValid: Bool {
        batch >= 0 && inChannels > 0 && outChannels > 0 && height > 0 && width > 0 && kernelHeight > 0
            && kernelWidth > 0 && stride > 0 && dilation > 0 && min(padTop, padBottom, padLeft, padRight) >= 0
            && height + padTop + padBottom >= dilation * (kernelHeight - 1) + 1
            && width + padLeft + padRight >= dilation * (kernelWidth - 1) + 1
    }

    package var description: String {
        "conv \(inChannels)->\(outChannels) k\(kernelHeight)x\(kernelWidth) s\(stride) d\(dilation) "
            + "pad(t\(padTop) b\(padBottom) l\(padLeft) r\(padRight)) on \(batch)x\(height)x\(width) -> \(outHeight)x\(outWidth)"
    }
}
