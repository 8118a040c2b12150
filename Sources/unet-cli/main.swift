import UNet
print("unet: not yet implemented")
