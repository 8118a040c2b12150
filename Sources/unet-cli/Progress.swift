import Foundation
import UNet

/// Shows training progress: on a terminal a live bar redrawn with `\r` (epoch k/N, batch, loss,
/// images/s, ETA); otherwise a plain line every `plainInterval` seconds and at the end of each epoch's
/// batches. The tutorial's per-epoch line is printed either way.
final class TrainingProgress {
    let totalEpochs: Int
    let interactive: Bool
    let plainInterval: TimeInterval
    private var epochTrainStart = Date()
    private var lossSum = 0.0
    private var currentEpoch = 0
    private var lastPlain = Date.distantPast
    private var validationSeconds: Double? = nil
    private var validationStart: Date? = nil
    private var barShown = false
    private var lastRedraw = Date.distantPast

    init(totalEpochs: Int, interactive: Bool = stdoutIsTerminal, plainInterval: TimeInterval = 10) {
        self.totalEpochs = totalEpochs
        self.interactive = interactive
        self.plainInterval = plainInterval
    }

    func handle(_ event: TrainingEvent) {
        switch event {
        case let .batch(epoch, batch, batches, loss, imagesPerSecond):
            let now = Date()
            if epoch != currentEpoch || batch == 1 {
                currentEpoch = epoch
                lossSum = 0
                epochTrainStart = now.addingTimeInterval(-1 / max(imagesPerSecond, 1e-9))
                lastPlain = now
            }
            lossSum += loss
            let perBatch = now.timeIntervalSince(epochTrainStart) / Double(batch)
            let validation = validationSeconds ?? 0
            let eta = Double(batches - batch) * perBatch + validation
                + Double(max(0, totalEpochs - epoch)) * (Double(batches) * perBatch + validation)
            let meanLoss = lossSum / Double(batch)
            if interactive {
                // At most ten redraws a second.
                guard batch == batches || batch == 1 || now.timeIntervalSince(lastRedraw) >= 0.1 else { return }
                lastRedraw = now
                let width = 24
                let filled = min(width, batch * width / max(batches, 1))
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                let line = String(format: "epoch %d/%d [%@] %d/%d loss %.4f (mean %.4f) %.1f img/s ETA %@",
                                  epoch, totalEpochs, bar, batch, batches, loss, meanLoss, imagesPerSecond, formatDuration(eta))
                redraw(line)
            } else if batch == batches || now.timeIntervalSince(lastPlain) >= plainInterval {
                lastPlain = now
                print(String(format: "epoch %d/%d batch %d/%d loss %.4f (mean %.4f) %.1f img/s ETA %@",
                             epoch, totalEpochs, batch, batches, loss, meanLoss, imagesPerSecond, formatDuration(eta)))
            }
        case let .validating(epoch):
            validationStart = Date()
            if interactive { redraw("epoch \(epoch)/\(totalEpochs) validating...") }
        case let .epoch(record):
            if let start = validationStart { validationSeconds = Date().timeIntervalSince(start) }
            clearBar()
            print(record.tutorialLine)
        case .checkpoint:
            break
        case let .message(text):
            clearBar()
            print(text)
        }
    }

    /// Removes the live bar so the next line starts clean.
    func clearBar() {
        guard barShown else { return }
        print("\r\u{1B}[2K", terminator: "")
        fflush(stdout)
        barShown = false
    }

    private func redraw(_ line: String) {
        print("\r\u{1B}[2K" + line, terminator: "")
        fflush(stdout)
        barShown = true
    }
}
