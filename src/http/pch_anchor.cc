// Anchors the precompiled beast.h shared by targets that use Asio/Beast.
