-- The refresh grant: every request is a real, first use of a live refresh token.
--
-- Each thread holds a queue of live refresh tokens (its share of BENCH_DATA, one token per
-- family, more families than the thread has connections). request() takes the oldest token
-- off the queue; response() puts the successor from the response body at the back. A token
-- is therefore sent at most once (wrk calls request() once before the run to check the
-- script; that token is never sent), a family never has two requests in flight, and the
-- reuse grace window is never involved. wrk handles a connection's response before it asks for
-- that connection's next request, so the queue cannot run dry while every response is good;
-- a bad response loses its family and counts as bad, and a request made with the queue
-- empty (it would be refused) counts as starved.
dofile("common.lua")

local queue, head, tail

function init(args)
  bench.init()
  queue = bench.slice()
  head, tail = 1, #queue
end

function request()
  local body = "grant_type=refresh_token&refresh_token="
  if head > tail then
    starved = starved + 1
    return wrk.format(nil, nil, nil, body .. "starved")
  end
  local token = queue[head]
  queue[head] = nil
  head = head + 1
  return wrk.format(nil, nil, nil, body .. token)
end

function response(status, headers, body)
  if bench.check(status, headers, body) then
    local successor = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
    if successor then
      tail = tail + 1
      queue[tail] = successor
    else
      bad = bad + 1
    end
  end
end
