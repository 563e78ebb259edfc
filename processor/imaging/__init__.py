"""The image engine: the only package that decodes and encodes pixels (libvips through
pyvips, Pillow's libwebp and LittleCMS, pi-heif for HEVC). It turns a plan into bytes."""
