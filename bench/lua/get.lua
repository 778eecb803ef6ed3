-- A GET row (JWKS, discovery): the same request every time, every response checked.
dofile("common.lua")
