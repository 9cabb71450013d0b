defmodule ElixirScope.Tracing.Frames do
  @moduledoc false
  # The words a {return_trace} frame takes on a traced process's stack, measured once per
  # VM: 3 on OTP 25 and 26 (return address, function, tracer), 4 on 27+ (the session
  # too), one more each where the runtime keeps frame pointers (+JPperf). The measure is
  # the difference in stack size between a tail-recursive probe run untraced and traced,
  # with a tracer of its own (a process that drops what it gets), through the backend
  # ElixirScope traces with: nothing of the application is touched.

  @calls 64

  @doc false
  def words(backend) do
    case :persistent_term.get({__MODULE__, :words}, nil) do
      nil ->
        words = measure(backend)
        :persistent_term.put({__MODULE__, :words}, words)
        words

      words ->
        words
    end
  end

  @doc false
  # The probe: tail-recursive, so untraced it runs in constant stack.
  def loop(0), do: Process.info(self(), :stack_size)
  def loop(n), do: loop(n - 1)

  defp measure(backend) do
    sink = spawn(fn -> drop() end)
    handle = backend.open(sink)
    parent = self()

    probe =
      spawn(fn ->
        {:stack_size, untraced} = loop(@calls)
        send(parent, {:untraced, self()})

        receive do
          :go -> send(parent, {:sizes, self(), untraced, loop(@calls)})
        end
      end)

    receive do
      {:untraced, ^probe} -> :ok
    end

    backend.process(handle, probe, true, [:call])
    backend.function(handle, {__MODULE__, :loop, 1}, [{:_, [], [{:return_trace}]}])
    send(probe, :go)

    receive do
      {:sizes, ^probe, untraced, {:stack_size, traced}} ->
        backend.close(handle, [{__MODULE__, :loop, 1}])
        Process.exit(sink, :kill)
        # loop(@calls) .. loop(0): one frame per call
        div(traced - untraced, @calls + 1)
    end
  end

  defp drop do
    receive do
      _ -> drop()
    end
  end
end
