-- A POST row whose bodies come from BENCH_DATA: each thread cycles through its own share
-- (the password grant uses one user per line, so no user is ever hit by more than a few
-- requests at once and the brute-force counters never fire; introspection has one line).
dofile("common.lua")

local bodies, index

function init(args)
  bench.init()
  bodies = bench.slice()
  index = 0
end

function request()
  index = index % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[index])
end
