import Foundation

/// The `README.md` of a `BioImageIOPackage`: what the model is and takes, how it was trained and how
/// well it did on its validation slices (from the checkpoint's metadata), how to validate it, the test
/// image's origin, the citation and the license.
enum BioImageIODocumentation {
    static func readme(configuration c: UNetConfiguration, metadata: BioImageIOMetadata, testImage: BioImageIOTestImage,
                       probabilities: Bool, geometry g: BioImageIOPackage.Geometry, checkpoint: CheckpointSummary?,
                       parameterCount: Int, producerVersion: String) -> String {
        var md = "# \(metadata.name)\n\n\(metadata.description)\n\n"
        md += "Authors: \(metadata.authors.joined(separator: ", ")). License: \(metadata.license).\n\n"

        md += "## Model\n\n"
        md += "A 2D U-Net (Ronneberger et al. 2015) as in the Lasagne U-Net tutorial for the ISBI 2012 EM segmentation "
            + "challenge, trained on the CPU with swift-unet: \(c.summary); \(parameterCount) parameters. "
            + "The weights are an ONNX graph (opset \(ONNXExport.opset)) with batch norm folded into the convolutions.\n\n"
        let channels = c.inputChannels == 1 ? "one channel (the EM slice)"
            : "\(c.inputChannels) channels (\(BioImageIODescription.inputChannelNames(c.inputChannels).joined(separator: ", ")): the slice and its neighbours)"
        md += "- **Input** `\(BioImageIOPackage.inputID)`: `[batch, channel, y, x]`, \(channels), raw intensities in "
            + "[\(number(testImage.rawRange.lowerBound)), \(number(testImage.rawRange.upperBound))]. "
            + "The height and width must be \(g.min) + n * \(g.step) pixels (n = 0, 1, 2, ...).\n"
        let n = testImage.normalization
        if n.offset == 0 && n.scale == 1 {
            md += "- **Preprocessing**: none: the network takes intensities in [0, 1] as they are.\n"
        } else {
            let formula = n.offset == 0 ? "value * \(number(n.scale))" : "(value - \(number(n.offset))) * \(number(n.scale))"
            md += "- **Preprocessing** (`scale_linear`): \(formula), which maps the raw range "
                + "to [0, 1] as swift-unet did for training (8-bit data divided by 255, 16-bit by 65535, float data by its range).\n"
        }
        let output = probabilities ? "`\(ONNXExport.probabilitiesName)`: the softmax over the classes (part of the ONNX graph)"
            : "`\(ONNXExport.logitsName)`: the logits (apply a softmax over the channels for probabilities)"
        let classes = c.classes == 2 ? "channel 1 is cell, channel 0 membrane (the ISBI labels: 255 cell, 0 membrane)"
            : "\(c.classes) classes, one per channel"
        md += "- **Output** \(output), `[batch, channel, y, x]`; \(classes). "
        if g.offset == 0 {
            md += "Same size as the input (same padding). The \(g.halo) pixels at each border see the zero padding: "
                + "tile with an overlap of \(g.halo) pixels (the `halo`) and discard them.\n\n"
        } else {
            md += "Valid padding: the output is \(-g.offset) pixels smaller than the input in each side, centred on it "
                + "(\(-g.offset / 2) pixels are lost at each border); mirror-pad the image by that much to cover it whole.\n\n"
        }

        md += "## Training\n\n"
        if let checkpoint {
            if let data = checkpoint.recordedDataFolder {
                md += "- Data: the folder `\(data.lastPathComponent)` (ISBI 2012 layout: `train-volume.tif`, `train-labels.tif`)"
                if let slices = checkpoint.recordedValidationSlices { md += ", slices \(slices.lowerBound)-\(slices.upperBound) held out for validation" }
                md += ".\n"
            }
            md += "- Checkpoint `\(checkpoint.url.lastPathComponent)` after \(checkpoint.completedEpochs) epochs"
            if let best = checkpoint.bestEpoch, let jaccard = checkpoint.bestMeanJaccard {
                md += "; best mean validation Jaccard \(String(format: "%.4f", jaccard)) at epoch \(best)"
            }
            md += ".\n"
            if let t = checkpoint.training {
                md += "- Settings: \(t.optimizer.rawValue), learning rate \(number(t.learningRate)), batch \(t.batchSize) x \(t.tileSize)^2 crops, "
                    + "loss \(t.loss.rawValue), augmentation \(t.augmentationSummary), seed \(t.seed).\n"
            }
        } else {
            md += "Not recorded: the package was made from a model without its checkpoint.\n"
        }
        md += "\n## Validation\n\n"
        let history = checkpoint?.history ?? []
        if history.isEmpty {
            md += "No validation figures are recorded with this model. "
        } else {
            md += "Per epoch, on the held-out validation slices (Jaccard index per class and its mean; cost is the validation loss):\n\n"
            let classes = history[0].validationJaccard.indices.map { "Jaccard class \($0)" }
            md += "| epoch | train cost | val cost | val accuracy | " + classes.joined(separator: " | ") + " | mean Jaccard |\n"
            md += "|" + String(repeating: "---|", count: 5 + classes.count) + "\n"
            let shown = history.count > 20 ? Array(history.prefix(5)) + Array(history.suffix(15)) : history
            for r in shown {
                md += "| \(r.epoch) | \(f4(r.trainCost)) | \(f4(r.validationCost)) | \(f4(r.validationAccuracy)) | "
                    + r.validationJaccard.map(f4).joined(separator: " | ") + " | \(f4(r.meanValidationJaccard)) |\n"
            }
            if history.count > 20 { md += "\n(\(history.count - 20) middle epochs left out.)\n" }
            md += "\n"
        }
        md += "To validate the model on your own labelled data, compare its thresholded prediction (cell where the cell "
            + "probability exceeds 0.5) with the labels: pixel accuracy and the Jaccard index per class, as above, or "
            + "the ISBI 2012 challenge's V_rand and V_info. swift-unet computes all of them with "
            + "`unet evaluate --model CHECKPOINT --data FOLDER`.\n\n"

        md += "## Test tensors and cover\n\n"
        md += "`\(BioImageIOPackage.FileName.testInput)` is \(testImage.origin), as raw float32 values; "
            + "`\(BioImageIOPackage.FileName.testOutput)` is the model's output on it, computed by swift-unet"
            + "\(producerVersion.isEmpty ? "" : " \(producerVersion)"). `\(BioImageIOPackage.FileName.cover)` shows "
            + "the test image beside it with the predicted membrane in red.\n\n"

        md += "## Citation\n\n\(BioImageIOPackage.citation.text). https://doi.org/\(BioImageIOPackage.citation.doi)\n\n"
        md += "## License\n\n\(metadata.license) (SPDX identifier).\n\n"
        md += "Packaged by swift-unet\(producerVersion.isEmpty ? "" : " \(producerVersion)") (`unet export --bioimageio`).\n"
        return md
    }

    private static func f4(_ v: Double) -> String { String(format: "%.4f", v) }
    private static func number(_ f: Float) -> String { "\(f)" }
}
