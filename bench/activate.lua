-- wrk script for bench_landing.py: every request taps Activate on a link of its own, as a phone posts it.
--   wrk --threads=T --connections=C --script=bench/activate.lua URL -- LINKS T QUOTA
-- LINKS holds one "<link token> <form token>" line per prepared link; thread i of T takes lines i, i+T,
-- i+2T ... Once QUOTA of its requests were answered, or at the first answer that is not 2xx/3xx (wrk
-- reports it as "Non-2xx or 3xx responses", and the bench raises), it prints "done" and stops:
-- bench.common.wrk times the run to the last "done" and ends wrk, which would otherwise wait out its
-- --duration. A link works once: a thread that runs out of links fails rather than post one again.

local count = 0

function setup(thread)
  thread:set("id", count)
  count = count + 1
end

function init(args)
  local threads, index = tonumber(args[2]), 0
  quota = tonumber(args[3])
  posts, answered = {}, 0
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  for name, value in pairs(wrk.headers) do  -- the User-Agent of --header
    headers[name] = value
  end
  for line in io.lines(args[1]) do
    if index % threads == id then
      local token, form_token = line:match("^(%S+) (%S+)$")
      posts[#posts + 1] = wrk.format("POST", "/m/" .. token .. "/activate", headers,
        "csrf_token=" .. form_token .. "&platform=ios")
    end
    index = index + 1
  end
  -- wrk asks thread 1 for one request before it starts (to count pipelined ones): a link it never sends.
  sent = 0
end

function request()
  sent = sent + 1
  return posts[sent] or error("thread " .. id .. " ran out of links after " .. (sent - 1))
end

function response(status, headers, body)
  answered = answered + 1
  if (status >= 400 or answered >= quota) and not finished then
    finished = true  -- done: its quota answered, or a failure the report will show
    io.stdout:write("done\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end
