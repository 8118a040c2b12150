import Foundation
import UNet
let rows = TensorReport.run()
print(TensorReport.format(rows))
