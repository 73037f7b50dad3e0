//! The OpenAPI 3.1 document of the inventory API (`/v1/openapi.json`).
