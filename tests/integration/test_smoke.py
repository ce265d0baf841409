from tests.factories import World


def test_a_passing_pipeline_completes(world: World) -> None:
    pipeline_id = world.create_pipeline()
    run_id = world.run(pipeline_id)
    detail = world.wait_for(pipeline_id, run_id)
    assert detail["status"] == "COMPLETED"
