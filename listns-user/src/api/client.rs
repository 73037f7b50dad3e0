//! The client side of the inventory API, for `listns --from`.
