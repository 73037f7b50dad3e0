//! Prints the inventory API's OpenAPI document (`/v1/openapi.json`);
//! `cargo xtask schema` writes it to `schema/openapi.json`.

fn main() {
    println!("{:#}", listns::api::openapi::document());
}
