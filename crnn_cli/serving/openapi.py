"""The OpenAPI 3.1 document served at /openapi.json (its schemas are JSON Schema 2020-12)."""

from __future__ import annotations

from typing import Any

import crnn_cli
from crnn_cli.serving.config import ServeConfig

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "What was wrong, naming the part."}},
}
RESULT = {
    "type": "object",
    "required": ["text", "confidence"],
    "additionalProperties": False,
    "properties": {
        "text": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "char_confidences": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}},
    },
}
RECOGNIZE = {
    "type": "object",
    "required": ["results", "model", "elapsed_ms"],
    "additionalProperties": False,
    "properties": {
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}},
        "model": {"type": "string", "description": "The model file's name."},
        "elapsed_ms": {"type": "number", "minimum": 0},
    },
}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        401: "Missing or wrong `Authorization: Bearer <key>` (only when the server has an API key).",
        413: "Body over --max-body-mb, too many images, or an image over the pixel limit.",
        415: "Content-Type is not image/*, application/octet-stream or multipart/form-data.",
        422: "A part is not a decodable image, or the multipart body has no `image` file field.",
        503: "The model is loading, or the queue is full (see Retry-After).",
    }
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {str(c): {"description": text[c], "content": body} for c in codes}


def openapi_document(config: ServeConfig) -> dict[str, Any]:
    auth = config.api_key_env is not None
    secured = {"security": [{"bearer": []}]} if auth else {}
    image_body = {"type": "string", "contentMediaType": "application/octet-stream"}
    recognize = {
        "summary": "Read the text in one or more cropped word or line images.",
        "description": "Results come back in the order the images were sent. Requests arriving "
        "together are read as one batch; each crop's answer does not depend on its neighbours.",
        "parameters": [
            {
                "name": "char_confidences",
                "in": "query",
                "required": False,
                "schema": {"type": "boolean", "default": False},
                "description": "Add each character's confidence.",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "image/*": {"schema": image_body},
                "application/octet-stream": {"schema": image_body},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["image"],
                        "properties": {"image": {"type": "array", "items": image_body}},
                    }
                },
            },
        },
        "responses": {
            "200": {
                "description": "The text read in each image.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Recognize"}}},
            },
            **_errors(*((401,) if auth else ()), 413, 415, 422, 503),
        },
        **secured,
    }
    plain = {"application/json": {"schema": {"type": "object"}}}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "crnn", "version": crnn_cli.__version__, "description": "CRNN text recognition."},
        "paths": {
            "/v1/recognize": {"post": recognize},
            "/v1/model": {
                "get": {
                    "summary": "The model's metadata: input shape, normalisation, dictionary, backend.",
                    "responses": {"200": {"description": "Metadata.", "content": plain}, **_errors(503)},
                    **secured,
                }
            },
            "/healthz": {
                "get": {"summary": "The process is alive.", "responses": {"200": {"description": "Alive."}}}
            },
            "/readyz": {
                "get": {
                    "summary": "The model is loaded and requests are served.",
                    "responses": {"200": {"description": "Ready."}, **_errors(503)},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics of this worker process.",
                    "responses": {
                        "200": {"description": "Prometheus text format.", "content": {"text/plain": {}}}
                    },
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document.", "responses": {"200": {"description": "OpenAPI."}}}
            },
            "/": {
                "get": {
                    "summary": "A page to drop or paste images and see what was read.",
                    "responses": {"200": {"description": "HTML.", "content": {"text/html": {}}}},
                }
            },
        },
        "components": {"schemas": {"Error": ERROR, "Result": RESULT, "Recognize": RECOGNIZE}},
    }
    if auth:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return doc
